"""The vendor's side: tools that run on the vendor's machine, never in the workspace."""
