"""A workspace: one directory holding the store, the corpus versions, bundles, jobs and artefacts.

Found from ``--workspace``, then ``BEDSIDE_WORKSPACE``, then the current directory and its parents
(the directory that holds ``bedside.toml``).

Layout::

    WS/bedside.toml      database URL and workspace id
    WS/bedside.db        SQLite store (default)
    WS/corpora/HASH/     one corpus version (owner-only files)
    WS/bundles/HASH/     content-addressed model bundles
    WS/jobs/ID/          job directories (spec, inputs, outputs)
    WS/artefacts/        fine-tuned models, plots, reports
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from bedside.config import Policy
from bedside.errors import WorkspaceError
from bedside.store.store import Store

CONFIG_NAME = "bedside.toml"
SUBDIRS = ("corpora", "bundles", "jobs", "artefacts", "reports")


def hash_token(token: str, salt: str) -> str:
    """Salted, slow-enough hash of an API token (tokens are random 256-bit, so PBKDF2 rounds stay low)."""
    return hashlib.pbkdf2_hmac("sha256", token.encode(), bytes.fromhex(salt), 10_000).hex()


def new_token(prefix: str) -> tuple[str, str, str]:
    """Return (token, salt, hash). The token is shown once; only salt and hash are stored."""
    token = f"{prefix}_{secrets.token_urlsafe(32)}"
    salt = secrets.token_hex(16)
    return token, salt, hash_token(token, salt)


@dataclass
class Workspace:
    root: Path
    store: Store

    # -- paths ---------------------------------------------------------------------------
    @property
    def corpora_dir(self) -> Path:
        return self.root / "corpora"

    @property
    def bundles_dir(self) -> Path:
        return self.root / "bundles"

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    @property
    def artefacts_dir(self) -> Path:
        return self.root / "artefacts"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    # -- policy --------------------------------------------------------------------------
    def policy(self) -> Policy:
        return Policy.from_dict(self.store.get_setting("policy", Policy().to_dict()))

    def set_policy(self, policy: Policy) -> None:
        self.store.set_setting("policy", policy.to_dict())

    # -- owner auth ----------------------------------------------------------------------
    def check_owner_token(self, token: str) -> bool:
        rec = self.store.get_setting("owner_token")
        if not rec:
            return False
        return secrets.compare_digest(hash_token(token, rec["salt"]), rec["hash"])

    def rotate_owner_token(self) -> str:
        token, salt, digest = new_token("bso")
        self.store.set_setting("owner_token", {"salt": salt, "hash": digest})
        return token

    # -- construction --------------------------------------------------------------------
    @classmethod
    def init(cls, root: Path, db_url: str | None = None) -> tuple[Workspace, str]:
        """Create a workspace at ``root``. Returns it and the owner's API token (shown once)."""
        root = Path(root).resolve()
        if (root / CONFIG_NAME).exists():
            raise WorkspaceError(
                f"{root} is already a bedside workspace.",
                hint="Use it as it is, or choose an empty directory for a new one.",
            )
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)  # the corpus lives here: owner only
        for sub in SUBDIRS:
            (root / sub).mkdir(exist_ok=True, mode=0o700)
        cfg = {"workspace_id": secrets.token_hex(8), "db_url": db_url or "sqlite:///bedside.db"}
        (root / CONFIG_NAME).write_text(tomli_w.dumps(cfg))
        ws = cls.open(root)
        ws.set_policy(Policy())
        token = ws.rotate_owner_token()
        return ws, token

    @classmethod
    def open(cls, root: Path) -> Workspace:
        root = Path(root).resolve()
        cfg_path = root / CONFIG_NAME
        if not cfg_path.exists():
            raise WorkspaceError(
                f"no bedside workspace at {root} (no {CONFIG_NAME}).",
                hint="Create one with `bedside init DIR`, or point to it with --workspace / BEDSIDE_WORKSPACE.",
            )
        try:
            cfg = tomllib.loads(cfg_path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise WorkspaceError(f"{cfg_path} is not valid TOML: {e}.") from e
        url = str(cfg.get("db_url", "sqlite:///bedside.db"))
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            rel = url.removeprefix("sqlite:///")
            url = f"sqlite:///{root / rel}"
        store = Store(url)
        store.migrate()
        return cls(root=root, store=store)

    @classmethod
    def find(cls, explicit: Path | str | None = None) -> Workspace:
        """``explicit``, else $BEDSIDE_WORKSPACE, else the cwd or a parent holding bedside.toml."""
        if explicit:
            return cls.open(Path(explicit))
        env = os.environ.get("BEDSIDE_WORKSPACE")
        if env:
            return cls.open(Path(env))
        here = Path.cwd().resolve()
        for d in (here, *here.parents):
            if (d / CONFIG_NAME).exists():
                return cls.open(d)
        raise WorkspaceError(
            f"no bedside workspace found in {here} or its parents.",
            hint="Run `bedside init DIR` first, or pass --workspace DIR (or set BEDSIDE_WORKSPACE).",
        )
