"""Write the API's OpenAPI spec (committed as docs/openapi.json; a test keeps the two equal).

python -m bedside.web.openapi docs/openapi.json
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any


def spec() -> dict[str, Any]:
    """The OpenAPI document of ``create_app`` (it does not depend on the workspace's content)."""
    from bedside.web.app import create_app
    from bedside.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        ws, _token = Workspace.init(Path(tmp) / "ws")
        try:
            return create_app(ws).openapi()
        finally:
            ws.store.dispose()


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    text = dumps(spec())
    if args:
        Path(args[0]).write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
