"""`python -m bedside ...` is the same as the `bedside` command."""

from bedside.cli.app import main

main()
