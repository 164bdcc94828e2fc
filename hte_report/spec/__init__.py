"""What the user asked: formulas and their safety check, typed options, the analysis plan
and its lock."""
