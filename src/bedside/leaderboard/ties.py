"""Deciding whether two adjacent leaderboard rows are statistically tied.

The paired bootstrap over the owner-only stored predictions is used where both rows have them;
otherwise the CI-overlap rule of :mod:`bedside.leaderboard.ranking`. Paired bootstraps are
deterministic for (workspace, results, resamples, seed), so each is computed once and kept in a
small LRU: bounded, because the web server lives for months and sees every pair ever compared.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bedside.leaderboard.ranking import ci_overlap_tie

if TYPE_CHECKING:
    from bedside.workspace import Workspace

PairKey = tuple[str, int, int, int, int]


class BoundedCache:
    """A thread-safe LRU of at most ``maxsize`` entries.

    >>> c = BoundedCache(maxsize=1); c.put("a", True); c.put("b", False); c.get("a") is None
    True
    """

    def __init__(self, maxsize: int = 2048) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}.")
        self.maxsize = maxsize
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


PAIRED_CACHE = BoundedCache(maxsize=2048)


@dataclass
class TieJudge:
    """Decides whether two adjacent rows are tied; ``methods_used`` says how, for the page.

    Tie when the 95 % CI of the paired macro-F1 difference includes 0; where the stored
    predictions are missing, the overlap of the two rows' intervals (more conservative).
    """

    ws: Workspace
    resamples: int = 1000
    seed: int = 0
    cache: BoundedCache = field(default_factory=lambda: PAIRED_CACHE)
    methods_used: set[str] = field(default_factory=set)
    _corpus: Any = None

    def tied(self, above: Mapping[str, Any], below: Mapping[str, Any]) -> bool:
        paired = self._paired(int(above["result_id"]), int(below["result_id"]))
        if paired is not None:
            self.methods_used.add("paired_bootstrap")
            return paired
        self.methods_used.add("ci_overlap")
        return ci_overlap_tie(above, below)

    def _paired(self, a: int, b: int) -> bool | None:
        key: PairKey = (str(self.ws.root), a, b, self.resamples, self.seed)
        cached = self.cache.get(key)
        if cached is not None:
            return bool(cached)
        try:
            from bedside.evaluation.paired import is_tie
            from bedside.evaluation.results import compare_results, predictions_path

            if not (
                predictions_path(self.ws, a).exists() and predictions_path(self.ws, b).exists()
            ):
                return None
            if self._corpus is None:
                from bedside.data.corpus import load_corpus

                self._corpus = load_corpus(self.ws)
            cmp = compare_results(
                self.ws, self._corpus, a, b, resamples=self.resamples, seed=self.seed
            )
        except Exception:  # artefacts missing or unreadable: fall back to CI overlap
            return None
        result = bool(is_tie(cmp))
        self.cache.put(key, result)
        return result
