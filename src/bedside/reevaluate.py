"""Re-evaluation: queue submissions again on a newer corpus version, so the board lives on.

When a corpus version becomes active (``bedside data add``, ``--append``, or a version made
active again) the owner policy ``reevaluate`` decides which submissions re-run by themselves:

* ``published`` (default): those on the board, i.e. both phases done on their own version;
* ``all``: every submission that was not cancelled (a failed one gets another chance);
* ``none``: nothing; ``bedside reevaluate`` queues by hand.

A re-run queues phase 1 (re-predict) and phase 2 (re-train on the new training split, depending
on phase 1) on the target version, through the queue's one enqueue path. Its jobs never change
the submission's status or its count (``jobs.queue.sync_submission`` looks at the submission's
own version only), so a re-run does not use up a submission; it does spend compute, charged to
the contributor like any job. Before queueing, each contributor's budget left (budget - used -
reserved by queued submissions - what this batch already planned) is compared with the
submission's estimate, scaled to the new version's row counts:

* enough for both phases: both are queued (phase 2 still stops cleanly if the budget runs out
  while it trains, and its result says ``stopped_by_budget``);
* enough for phase 1 only: phase 1 is queued, phase 2 is skipped with the reason;
* not enough for phase 1: nothing is queued for that submission, the reason is recorded.

Skipped, each with its reason: the contributor is revoked, the bundle is no longer stored, the
class set differs from the submission's own version, the submission already has jobs or results
on the target version, the budget is spent. Every batch is a row of ``reevaluations`` and an
audit entry (``reevaluation.queued``), in the transaction that queues the jobs.

Example::

    out = reevaluate(ws, version=2)               # by hand: every eligible submission
    out["queued"][0]["jobs"], out["skipped"]      # ([17, 18], [{"submission_id": 3, "reason": ...}])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from bedside.errors import ConfigError, NotFoundError
from bedside.jobs.queue import ACTIVE, JobState, enqueue_for_submission
from bedside.store import audit, schema
from bedside.store.store import utcnow
from bedside.submissions.contributors import RESERVING_STATUSES

if TYPE_CHECKING:
    from bedside.workspace import Workspace

POLICY_STATUSES = {"published": ("done",), "all": ("accepted", "running", "done", "failed")}


def _version_row(conn: Connection, version: int | str | None) -> Any:
    t = schema.corpus_versions
    q = select(t.c.id, t.c.hash, t.c.classes, t.c.n_train, t.c.n_holdout)
    if version is None:
        q = q.where(t.c.active.is_(True))
    elif isinstance(version, int) or str(version).isdigit():
        q = q.where(t.c.id == int(version))
    else:
        q = q.where(t.c.hash.startswith(str(version)))
    row = conn.execute(q.order_by(t.c.id.desc())).mappings().first()
    if row is None:
        what = "an active corpus" if version is None else f"corpus version {version!r}"
        raise NotFoundError(
            f"the workspace has no {what}.", hint="List them with `bedside data versions`."
        )
    return row


def class_set_reason(own: Sequence[dict[str, Any]], target: Sequence[dict[str, Any]]) -> str | None:
    """Why a model of one version cannot be scored on another, or None when the classes match.

    >>> class_set_reason([{"name": "a"}, {"name": "b"}], [{"name": "a"}])
    "the class sets differ: only in the submission's version: 'b'"
    """
    a = {str(c["name"]) for c in own}
    b = {str(c["name"]) for c in target}
    if a == b:
        return None
    parts = []
    if a - b:
        parts.append("only in the submission's version: " + ", ".join(map(repr, sorted(a - b))))
    if b - a:
        parts.append("only in the target version: " + ", ".join(map(repr, sorted(b - a))))
    return "the class sets differ: " + "; ".join(parts)


def _budget_left(conn: Connection, contributor: Any) -> float:
    s = schema.submissions
    reserved = sum(
        float((e or {}).get("total", 0.0))
        for e in conn.execute(
            select(s.c.estimate).where(
                s.c.contributor_id == contributor["id"], s.c.status.in_(RESERVING_STATUSES)
            )
        ).scalars()
    )
    return float(contributor["budget_pflops"]) - float(contributor["used_pflops"]) - reserved


def _scaled_estimate(sub: Any, own: Any, target: Any) -> tuple[float, float]:
    """(phase 1, phase 2) PFLOPs expected on the target: the intake estimate scaled by rows."""
    est = sub["estimate"] or {}
    p1 = float(est.get("phase1") or 0.0) * target["n_holdout"] / max(1, own["n_holdout"])
    p2 = float(est.get("phase2") or 0.0) * target["n_train"] / max(1, own["n_train"])
    return p1, p2


def _candidates(conn: Connection, mode: str, ids: Sequence[int] | None) -> list[Any]:
    s = schema.submissions
    q = select(s).order_by(s.c.id)
    if ids is not None:
        rows = list(conn.execute(q.where(s.c.id.in_(list(ids)))).mappings())
        missing = sorted(set(ids) - {int(r["id"]) for r in rows})
        if missing:
            raise NotFoundError(
                f"no submission(s) {', '.join(map(str, missing))}.",
                hint="List them with `bedside submissions list`.",
            )
        return rows
    return list(conn.execute(q.where(s.c.status.in_(POLICY_STATUSES[mode]))).mappings())


def plan(
    ws: Workspace,
    conn: Connection,
    target: Any,
    mode: str,
    ids: Sequence[int] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What to queue on ``target`` and what to skip (with reasons), in ``conn``; writes nothing."""
    t, c, cv = schema.jobs, schema.contributors, schema.corpus_versions
    queue: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    spent: dict[int, float] = {}  # what this batch already planned per contributor
    for sub in _candidates(conn, mode, ids):
        sid = int(sub["id"])

        def skip(reason: str, sid: int = sid) -> None:
            skipped.append({"submission_id": sid, "reason": reason})

        if int(sub["corpus_version_id"]) == int(target["id"]):
            skip(f"it was submitted on version {target['id']}: its own evaluation runs there")
            continue
        held = conn.execute(
            select(t.c.id).where(
                t.c.submission_id == sid,
                t.c.corpus_version_id == target["id"],
                t.c.state.in_((*ACTIVE, JobState.DONE)),
            )
        ).first()
        if held is not None:
            skip(f"it already has jobs on version {target['id']} (queued, running or done)")
            continue
        con = conn.execute(select(c).where(c.c.id == sub["contributor_id"])).mappings().one()
        if con["revoked"]:
            skip(f"its contributor {con['name']!r} is revoked")
            continue
        if not (ws.bundles_dir / str(sub["bundle_hash"])).is_dir():
            skip(f"its bundle {str(sub['bundle_hash'])[:12]} is no longer stored")
            continue
        own = (
            conn.execute(
                select(cv.c.id, cv.c.classes, cv.c.n_train, cv.c.n_holdout).where(
                    cv.c.id == sub["corpus_version_id"]
                )
            )
            .mappings()
            .one()
        )
        if (why := class_set_reason(own["classes"], target["classes"])) is not None:
            skip(why)
            continue
        p1, p2 = _scaled_estimate(sub, own, target)
        cid = int(con["id"])
        left = _budget_left(conn, con) - spent.get(cid, 0.0)
        if left <= 0 or left < p1:
            skip(
                f"{con['name']}'s compute budget is spent ({max(left, 0.0):.3g} PFLOPs left, "
                f"phase 1 needs about {p1:.3g})"
            )
            continue
        phases = ["phase1", "phase2"] if left >= p1 + p2 else ["phase1"]
        entry: dict[str, Any] = {"submission_id": sid, "phases": phases}
        if len(phases) == 1:
            entry["note"] = (
                f"phase 2 not queued: {con['name']} has {left:.3g} PFLOPs left, "
                f"phase 1 and 2 need about {p1 + p2:.3g}"
            )
        spent[cid] = spent.get(cid, 0.0) + (p1 + p2 if len(phases) == 2 else p1)
        queue.append(entry)
    return queue, skipped


def reevaluate(
    ws: Workspace,
    version: int | str | None = None,
    submission_ids: Sequence[int] | None = None,
    *,
    mode: str | None = None,
    trigger: str = "manual",
    actor: str = "owner",
) -> dict[str, Any]:
    """Queue phase 1 and 2 again on a corpus version (default: the active one).

    ``submission_ids`` names submissions (any skip reason is then an error and nothing is
    queued); without them ``mode`` (default: the policy's ``reevaluate``, ``all`` when that is
    ``none``) picks them. Returns ``{"reevaluation_id", "corpus_version_id", "queued",
    "skipped"}``; ``reevaluation_id`` is None when nothing was queued or skipped.
    """
    policy_mode = ws.policy().reevaluate
    chosen = mode or (policy_mode if policy_mode != "none" else "all")
    if chosen not in POLICY_STATUSES:
        raise ConfigError(f"mode must be published or all; found {chosen!r}.")
    with ws.store.write() as conn:
        target = _version_row(conn, version)
        queue, skipped = plan(ws, conn, target, chosen, submission_ids)
        if submission_ids is not None and skipped:
            reasons = "; ".join(f"submission {s['submission_id']}: {s['reason']}" for s in skipped)
            raise ConfigError(
                f"nothing was queued on version {target['id']}: {reasons}.",
                hint="Leave out the submissions named here, or fix what the reason says "
                "(restore the bundle, re-admit the contributor, raise the budget).",
            )
        out: dict[str, Any] = {
            "reevaluation_id": None,
            "corpus_version_id": int(target["id"]),
            "trigger": trigger,
            "policy": "manual" if submission_ids is not None else chosen,
            "queued": queue,
            "skipped": skipped,
        }
        if not queue and not skipped:
            return out
        r = schema.reevaluations
        pk = conn.execute(
            r.insert().values(
                corpus_version_id=int(target["id"]),
                trigger=trigger,
                policy=out["policy"],
                actor=actor,
                queued=[],
                skipped=skipped,
                created_at=utcnow(),
            )
        ).inserted_primary_key
        assert pk is not None
        rid = int(pk[0])
        for entry in queue:
            entry["jobs"] = enqueue_for_submission(
                conn,
                entry["submission_id"],
                int(target["id"]),
                kinds=entry["phases"],
                spec={"reevaluation_id": rid},
            )
        conn.execute(r.update().where(r.c.id == rid).values(queued=queue))
        audit.append(
            conn,
            actor,
            "reevaluation.queued",
            {
                "reevaluation_id": rid,
                "corpus_version_id": int(target["id"]),
                "trigger": trigger,
                "policy": out["policy"],
                "queued": [q["submission_id"] for q in queue],
                "skipped": skipped,
            },
        )
        out["reevaluation_id"] = rid
    return out


def on_activation(
    ws: Workspace, version_id: int, previous_id: int | None, actor: str = "owner"
) -> dict[str, Any]:
    """What the policy re-queues when ``version_id`` became active (``bedside data add``).

    With ``reevaluate = none`` nothing is queued (the result says so)."""
    mode = ws.policy().reevaluate
    if mode == "none" or previous_id is None or previous_id == version_id:
        return {
            "reevaluation_id": None,
            "corpus_version_id": version_id,
            "trigger": "activation",
            "policy": mode,
            "queued": [],
            "skipped": [],
            # the first version, or the active one again: there is nothing to re-run
            "unchanged": previous_id is None or previous_id == version_id,
        }
    return reevaluate(ws, version_id, mode=mode, trigger="activation", actor=actor)


def list_reevaluations(ws: Workspace) -> list[dict[str, Any]]:
    """Every re-evaluation batch, oldest first (owner view)."""
    r = schema.reevaluations
    with ws.store.read() as conn:
        return [dict(x) for x in conn.execute(select(r).order_by(r.c.id)).mappings()]


def summary_lines(out: dict[str, Any]) -> list[str]:
    """Plain-words lines for the CLI: what was queued, what was skipped and why."""
    v = out["corpus_version_id"]
    if out.get("unchanged"):
        return []
    if out["policy"] == "none":
        return [f"re-evaluation: policy reevaluate = none; nothing queued on version {v}."]
    lines = [
        f"re-evaluation on version {v} ({out['policy']}): {len(out['queued'])} submission(s) "
        f"queued, {len(out['skipped'])} skipped."
    ]
    for q in out["queued"]:
        jobs = ", ".join(map(str, q.get("jobs", [])))
        lines.append(
            f"  queued submission {q['submission_id']}: {'+'.join(q['phases'])} (jobs {jobs})"
        )
        if q.get("note"):
            lines.append(f"    {q['note']}")
    for s in out["skipped"]:
        lines.append(f"  skipped submission {s['submission_id']}: {s['reason']}")
    return lines


def active_version_id(ws: Workspace) -> int | None:
    """The active corpus version's id, or None (read before an intake that may change it)."""
    t = schema.corpus_versions
    with ws.store.read() as conn:
        v = conn.execute(
            select(t.c.id).where(t.c.active.is_(True)).order_by(t.c.id.desc())
        ).scalar()
    return None if v is None else int(v)
