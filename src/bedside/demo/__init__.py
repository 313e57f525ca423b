"""`bedside demo`: the whole story end to end on the embedded default corpus and models."""
