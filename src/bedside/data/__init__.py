"""Corpus intake, validation, splitting, EDA and the synthetic corpus (no torch here)."""
