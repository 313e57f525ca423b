"""Release rules: what precision a released figure has and who may see which rows.

Every number the leaderboard releases passes through :func:`round_released`, and every viewer's
scope comes from :func:`scope_for`, so the rules live here and nowhere else:

* figures are rounded to the policy's ``score_decimals``; NaN and infinities are released as
  ``None`` (JSON has no NaN, and an infinite figure is never a real result);
* the owner sees every row, published or not;
* before publishing, a contributor sees only their own rows (and the internal baseline);
* after publishing, every authenticated viewer sees every row; anonymous viewers see nothing
  before publishing.

Example::

    >>> round_released({"f1": 0.123456, "ci": [float("nan"), 0.5]}, 3)
    {'f1': 0.123, 'ci': [None, 0.5]}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bedside.errors import AuthError

if TYPE_CHECKING:
    from bedside.auth import Principal

ALL = True  # the scope of a viewer who sees every row


def round_released(x: Any, decimals: int) -> Any:
    """Round every float in ``x`` (recursively) to the released precision; NaN/inf become None."""
    if isinstance(x, bool) or x is None:
        return x
    if isinstance(x, float):
        return round(x, decimals) if math.isfinite(x) else None
    if isinstance(x, Mapping):
        return {k: round_released(v, decimals) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [round_released(v, decimals) for v in x]
    return x


def finite_or_none(x: Any) -> float | None:
    """``float(x)`` when that is a finite number, else None (text, None, NaN, ±inf)."""
    if isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError, OverflowError):
        return None
    return v if math.isfinite(v) else None


def scope_for(viewer: Principal | None, published: bool) -> int | None | bool:
    """Which submissions ``viewer`` may see: True (all), or one contributor id.

    Raises AuthError for an anonymous viewer before publishing.
    """
    if viewer is not None and viewer.is_owner:
        return ALL
    if published:
        return ALL
    if viewer is None:
        raise AuthError(
            "the leaderboard is not published yet.",
            hint="Log in with your API token to see your own results.",
        )
    return viewer.contributor_id


def may_see(scope: int | None | bool, contributor_id: int | None) -> bool:
    """Whether a submission of ``contributor_id`` is inside ``scope`` (from :func:`scope_for`)."""
    return scope is ALL or contributor_id == scope
