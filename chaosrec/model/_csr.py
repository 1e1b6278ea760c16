"""A minimal compressed-sparse-row container for per-user item lists."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = ["CSR"]


class CSR(NamedTuple):
    """Rows of item ids: row ``r`` is ``indices[indptr[r]:indptr[r + 1]]``.

    ``indptr`` is int64 ``[n_rows + 1]`` starting at 0 and non-decreasing;
    ``indices`` is int64 ``[indptr[-1]]``.
    """

    indptr: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int64]

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return int(self.indptr.shape[0]) - 1

    def row(self, r: int) -> npt.NDArray[np.int64]:
        """The item ids of row ``r``."""
        return self.indices[self.indptr[r] : self.indptr[r + 1]]

    def lengths(self) -> npt.NDArray[np.int64]:
        """The number of items of every row, int64 ``[n_rows]``."""
        return np.diff(self.indptr).astype(np.int64)

    def take(self, rows: npt.ArrayLike) -> CSR:
        """A new CSR holding only ``rows`` (in the given order)."""
        picked = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths()[picked]
        indptr = np.zeros(picked.shape[0] + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        if picked.size == 0:
            return CSR(indptr, np.empty(0, dtype=np.int64))
        starts = self.indptr[picked]
        offsets = np.arange(indptr[-1], dtype=np.int64) - np.repeat(indptr[:-1], lengths)
        indices = self.indices[np.repeat(starts, lengths) + offsets]
        return CSR(indptr, indices.astype(np.int64))
