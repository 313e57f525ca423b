"""Putting the chosen model to work: deploy it, set recall targets, screen new abstracts in the
sandbox, compare with the current classifier (shadow mode), export to ONNX, write a model card.

    deploy (models.py) -> targets (operating.py) -> screen (runs.py, engine/screen.py)
                                                  -> shadow / realised recall (shadow.py)
    export (export.py: ONNX + card.py: README.md model card)

Nothing here imports torch at module level.
"""

__all__ = ["card", "export", "inputs", "models", "operating", "runs", "shadow"]
