"""Shared CLI plumbing: finding the workspace, printing tables or JSON, progress bars.

Text that came from input (column headers, labels, class and member names, config values, error
messages quoting them) goes through ``safe`` before Rich prints it: markup is escaped, and control
characters (ESC of ANSI/OSC sequences, CR, newlines inside a value) are shown as ``\\x1b``-style
escapes, so input can neither crash a command, nor become a hyperlink, nor forge a line.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bedside.workspace import Workspace

CONTEXT = {"help_option_names": ["-h", "--help"]}
# Wide enough that model and class names are not split across lines in pipes and logs.
console = Console(width=max(Console().width, 140))
err_console = Console(stderr=True)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def safe(text: Any, *, newlines: bool = False) -> str:
    """``text`` ready for Rich: markup escaped, control characters shown escaped.

    Example: ``safe("[/x]\\x1b[2J")`` prints as ``[/x]\\x1b[2J`` (literal text, no screen clear).
    ``newlines=True`` keeps newlines (for multi-line text that bedside itself wrote).
    """

    def show(m: re.Match[str]) -> str:
        ch = m.group(0)
        if newlines and ch == "\n":
            return ch
        code = ord(ch)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return escape(_CONTROL.sub(show, str(text)))


class Format(StrEnum):
    table = "table"
    json = "json"


FORMAT_OPTION = typer.Option(
    Format.table, "--format", "-f", help="table (for people) or json (for scripts)."
)


def new_group(help_text: str) -> typer.Typer:
    return typer.Typer(
        help=help_text,
        context_settings=CONTEXT,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )


def workspace(ctx: typer.Context) -> Workspace:
    """The workspace named by --workspace, $BEDSIDE_WORKSPACE or the current directory."""
    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    if "ws" not in obj:
        obj["ws"] = Workspace.find(obj.get("workspace"))
        root.obj = obj
    return obj["ws"]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=safe(title) if title else None, show_lines=False)
    for c in columns:
        table.add_column(safe(c))
    for r in rows:
        table.add_row(*["" if v is None else safe(v) for v in r])
    console.print(table)


def emit(
    fmt: Format,
    data: Any,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    title: str | None = None,
) -> None:
    """Print ``data`` as JSON, or ``rows`` as a table, depending on ``--format``."""
    if fmt == Format.json:
        print_json(data)
    else:
        print_table(title, columns, rows)
