"""bedside: bring language models to a hospital's private corpus, not the corpus to the models."""

from bedside.errors import BedsideError

__version__ = "0.1.0"
__all__ = ["BedsideError", "__version__"]
