"""Estimation: setup, the contrast engine, one module per outcome family, the bootstrap."""
