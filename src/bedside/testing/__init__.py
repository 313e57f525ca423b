"""Helpers for tests, the self-check and the quick demo: tiny random models and bundles."""
