"""Contributors: who may submit, how often, and with how much compute.

A contributor has an API token (``bsc_…``; shown once, only a salted hash is stored), a limit on
counted submissions and a compute budget in PFLOPs. Every change is audited in the same
transaction.

Example::

    row, token = add_contributor(ws, "acme", max_submissions=3, budget_pflops=50)
    get_contributor(ws, "acme")["submissions_left"]  # 3
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, func, select

from bedside.errors import ConfigError, NotFoundError
from bedside.store import audit, schema
from bedside.store.store import utcnow
from bedside.workspace import Workspace, new_token

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Submissions whose estimate is held back from the budget until the worker books the actual use.
RESERVING_STATUSES = ("accepted", "running")
# Statuses that never count against the submission limit (besides counted = False, which the
# worker sets when a job fails for a platform reason): a cancelled submission produced no score.
UNCOUNTED_STATUSES = ("cancelled",)
PUBLIC_COLUMNS = (
    "id",
    "name",
    "token_prefix",
    "max_submissions",
    "budget_pflops",
    "used_pflops",
    "revoked",
    "created_at",
)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(
            f"contributor name must be 1..64 characters of letters, digits, '.', '_' or '-', starting "
            f"with a letter or digit; found {name!r}.",
            hint="Example: bedside contributor add acme-health",
        )
    return name


def _check_limits(max_submissions: int | None, budget_pflops: float | None) -> None:
    if max_submissions is not None and not 0 <= max_submissions <= 100_000:
        raise ConfigError(f"max_submissions must be 0..100000; found {max_submissions}.")
    if budget_pflops is not None and not 0 <= budget_pflops <= 1e9:
        raise ConfigError(f"budget_pflops must be 0..1e9; found {budget_pflops}.")


def counted_submissions(conn: Connection, contributor_id: int) -> int:
    """Submissions that count against the limit: accepted and not given back."""
    s = schema.submissions
    q = (
        select(func.count())
        .select_from(s)
        .where(
            s.c.contributor_id == contributor_id,
            s.c.counted.is_(True),
            s.c.status.not_in(UNCOUNTED_STATUSES),
        )
    )
    return int(conn.execute(q).scalar() or 0)


def reserved_pflops(conn: Connection, contributor_id: int) -> float:
    """Estimated PFLOPs of the contributor's submissions still queued or running."""
    s = schema.submissions
    rows = conn.execute(
        select(s.c.estimate).where(
            s.c.contributor_id == contributor_id, s.c.status.in_(RESERVING_STATUSES)
        )
    ).scalars()
    return float(sum(float((e or {}).get("total", 0.0)) for e in rows))


def _public(conn: Connection, row: Any) -> dict[str, Any]:
    d = {k: row[k] for k in PUBLIC_COLUMNS}
    d["revoked"] = bool(d["revoked"])
    used = counted_submissions(conn, row["id"])
    reserved = reserved_pflops(conn, row["id"])
    d["submissions_used"] = used
    d["submissions_left"] = max(0, int(row["max_submissions"]) - used)
    d["reserved_pflops"] = reserved
    d["budget_left_pflops"] = max(
        0.0, float(row["budget_pflops"]) - float(row["used_pflops"]) - reserved
    )
    return d


def contributor_row(conn: Connection, name: str) -> Any:
    """The raw row (in the caller's transaction), or NotFoundError."""
    t = schema.contributors
    row = conn.execute(select(t).where(t.c.name == name)).mappings().first()
    if row is None:
        known = conn.execute(select(t.c.name).order_by(t.c.name).limit(20)).scalars().all()
        raise NotFoundError(
            f"no contributor named {name!r}"
            + (f"; contributors are: {', '.join(known)}." if known else "; there are none yet."),
            hint="Add one with `bedside contributor add NAME`.",
        )
    return row


def add_contributor(
    ws: Workspace,
    name: str,
    max_submissions: int | None = None,
    budget_pflops: float | None = None,
    actor: str = "owner",
) -> tuple[dict[str, Any], str]:
    """Create a contributor; returns its public record and its API token (shown once, never stored).

    Example: ``row, token = add_contributor(ws, "acme")``
    """
    _check_name(name)
    _check_limits(max_submissions, budget_pflops)
    policy = ws.policy()
    max_submissions = (
        policy.default_submissions if max_submissions is None else int(max_submissions)
    )
    budget = policy.default_budget_pflops if budget_pflops is None else float(budget_pflops)
    token, salt, digest = new_token("bsc")
    t = schema.contributors
    with ws.store.write() as conn:
        if conn.execute(select(t.c.id).where(t.c.name == name)).first() is not None:
            raise ConfigError(
                f"a contributor named {name!r} already exists.",
                hint=f"Pick another name, or `bedside contributor rotate-token {name}` for a new token.",
            )
        conn.execute(
            t.insert().values(
                name=name,
                token_salt=salt,
                token_hash=digest,
                token_prefix=token[:12],
                max_submissions=max_submissions,
                budget_pflops=budget,
                used_pflops=0.0,
                revoked=False,
                created_at=utcnow(),
                meta={},
            )
        )
        audit.append(
            conn,
            actor,
            "contributor.add",
            {"name": name, "max_submissions": max_submissions, "budget_pflops": budget},
        )
        row = contributor_row(conn, name)
        return _public(conn, row), token


def update_contributor(
    ws: Workspace,
    name: str,
    *,
    max_submissions: int | None = None,
    budget_pflops: float | None = None,
    revoked: bool | None = None,
    actor: str = "owner",
) -> dict[str, Any]:
    """Change a contributor's limit, budget or revoked flag; returns the new public record."""
    _check_limits(max_submissions, budget_pflops)
    changes: dict[str, Any] = {}
    if max_submissions is not None:
        changes["max_submissions"] = int(max_submissions)
    if budget_pflops is not None:
        changes["budget_pflops"] = float(budget_pflops)
    if revoked is not None:
        changes["revoked"] = bool(revoked)
    t = schema.contributors
    with ws.store.write() as conn:
        row = contributor_row(conn, name)
        if changes:
            conn.execute(t.update().where(t.c.id == row["id"]).values(**changes))
            action = "contributor.revoke" if changes.get("revoked") else "contributor.update"
            audit.append(conn, actor, action, {"name": name, **changes})
        return _public(conn, contributor_row(conn, name))


def rotate_token(ws: Workspace, name: str, actor: str = "owner") -> str:
    """Issue a new token for ``name`` (the old one stops working); returns it, shown once."""
    token, salt, digest = new_token("bsc")
    t = schema.contributors
    with ws.store.write() as conn:
        row = contributor_row(conn, name)
        conn.execute(
            t.update()
            .where(t.c.id == row["id"])
            .values(token_salt=salt, token_hash=digest, token_prefix=token[:12])
        )
        audit.append(conn, actor, "contributor.rotate_token", {"name": name})
    return token


def get_contributor(ws: Workspace, name: str) -> dict[str, Any]:
    """Public record with usage: submissions_used/left, used/reserved/budget_left PFLOPs."""
    with ws.store.read() as conn:
        return _public(conn, contributor_row(conn, name))


def get_contributor_by_id(ws: Workspace, contributor_id: int) -> dict[str, Any]:
    t = schema.contributors
    with ws.store.read() as conn:
        row = conn.execute(select(t).where(t.c.id == contributor_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no contributor with id {contributor_id}.")
        return _public(conn, row)


def list_contributors(ws: Workspace) -> list[dict[str, Any]]:
    t = schema.contributors
    with ws.store.read() as conn:
        rows = conn.execute(select(t).order_by(t.c.name)).mappings().all()
        return [_public(conn, r) for r in rows]


# -- billing: what jobs spend ----------------------------------------------------------------

PFLOP = 1e15


def remaining_budget_flops(conn: Connection, contributor: Any, submission_id: int) -> float:
    """Budget minus what was used minus what other queued submissions reserved, in FLOPs."""
    s = schema.submissions
    others = conn.execute(
        select(s.c.estimate).where(
            s.c.contributor_id == contributor["id"],
            s.c.id != submission_id,
            s.c.status.in_(RESERVING_STATUSES),
        )
    ).scalars()
    reserved = sum(float((e or {}).get("total", 0.0)) for e in others)
    left = float(contributor["budget_pflops"]) - float(contributor["used_pflops"]) - reserved
    return max(0.0, left) * PFLOP


def actual_pflops(ws: Workspace, job_id: int) -> float:
    """What a finished job spent, from its ``out/compute.json`` (0 when it does not say)."""
    from bedside.jobs.outputs import read_compute

    flops = read_compute(ws.jobs_dir / str(job_id) / "out").flops
    return 0.0 if flops is None else max(0.0, float(flops)) / PFLOP


def charge(conn: Connection, submission_id: int | None, pflops: float) -> None:
    """Add ``pflops`` to the submission's contributor's ``used_pflops``, in ``conn``."""
    if submission_id is None or pflops <= 0:
        return
    s, c = schema.submissions, schema.contributors
    cid = conn.execute(select(s.c.contributor_id).where(s.c.id == submission_id)).scalar()
    if cid is None:
        return
    used = conn.execute(select(c.c.used_pflops).where(c.c.id == cid)).scalar() or 0.0
    conn.execute(c.update().where(c.c.id == cid).values(used_pflops=float(used) + pflops))
