"""Foundation used by every layer: number formatting and multiplicity arithmetic."""
