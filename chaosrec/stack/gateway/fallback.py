"""Degraded answers for when no replica can serve: the user's last good answer, else popularity."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

__all__ = ["FallbackCache"]


class FallbackCache:
    """A bounded LRU of each user's last good recommendation list, plus a popularity list."""

    def __init__(self, popularity: Sequence[int], capacity: int = 50_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity={capacity} must be >= 1")
        self.popularity = list(popularity)
        self.capacity = capacity
        self._last_good: OrderedDict[int, list[int]] = OrderedDict()

    def remember(self, user_id: int, items: Sequence[int]) -> None:
        self._last_good[user_id] = list(items)
        self._last_good.move_to_end(user_id)
        while len(self._last_good) > self.capacity:
            self._last_good.popitem(last=False)

    def answer(self, user_id: int, k: int) -> tuple[list[int], str]:
        """Items and their source: ``"last_good"`` or ``"popularity"``."""
        items = self._last_good.get(user_id)
        if items is not None:
            return items[:k], "last_good"
        return self.popularity[:k], "popularity"

    def __len__(self) -> int:
        return len(self._last_good)
