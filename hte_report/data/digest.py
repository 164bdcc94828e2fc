"""The data's digest: the SHA-256 of a frame's content (column names, dtypes and values, in row
order) that every report prints, computed for large data in a thread of its own while the
analysis runs; and the SHA-256 of a file."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pandas as pd

from hte_report.data.levels import Levels


def dataset_sha256(frame: pd.DataFrame, levels: dict | None = None) -> str:
    """SHA-256 of the data's content: column names, dtypes and values, in row order: the
    bytes of pandas' per-row hashes (``hash_pandas_object(frame, index=False)``).

    ``levels``: factorizations of some columns (a :class:`~hte_report.data.levels.Levels`, or
    ``(codes, distinct values)`` from :func:`~hte_report.data.levels.raw_codes`), hashed
    through their codes. The digest is the same (pandas hashes a categorical through its
    categories, consistently with its values, whatever their order), but text is not hashed
    row by row again."""
    h = hashlib.sha256()
    h.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    if levels:
        frame = frame.copy(deep=False)
        for col, lv in levels.items():
            frame[col] = (lv.categorical() if isinstance(lv, Levels) else
                          pd.Categorical.from_codes(lv[0], categories=lv[1]))
    # by blocks of rows: each row's hash depends on that row only, so the digest is the
    # same, and the hash arrays are a block long (no n-long temporaries per column); a
    # categorical column hashes its categories once per block, so a column with very many
    # categories is hashed whole
    rows = HASH_ROWS
    if any(isinstance(t, pd.CategoricalDtype) and len(t.categories) > rows // 4
           for t in frame.dtypes):
        rows = max(len(frame), 1)
    for s in range(0, len(frame), rows):
        h.update(pd.util.hash_pandas_object(frame.iloc[s:s + rows], index=False)
                 .to_numpy().tobytes())
    return h.hexdigest()


#: Rows per block of :func:`dataset_sha256`.
HASH_ROWS = 1 << 16

#: Data of at least this many rows are hashed in a thread of their own while the analysis
#: runs (:class:`PendingDigest`).
DIGEST_THREAD_MIN_ROWS = 200_000


class PendingDigest:
    """:func:`dataset_sha256` computed in a thread of its own, for the analysis to go on
    meanwhile: it is needed only when the result is written. Its numpy and hashlib work
    releases the GIL, so on a second core it costs the analysis almost nothing (0.15-0.2 s at
    1e6 x 8 otherwise). The digest is the same; an error is raised by :meth:`result`, where
    the digest is wanted. The frame must not be modified meanwhile (prepare never writes into
    the caller's data)."""

    def __init__(self, frame: pd.DataFrame, levels: dict | None):
        self._value: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(frame, levels),
                                         name="hte_report-digest", daemon=True)
        self._thread.start()

    def _run(self, frame, levels) -> None:
        try:
            self._value = dataset_sha256(frame, levels)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            self._error = e

    def result(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def start_digest(frame: pd.DataFrame, levels: dict) -> str | PendingDigest:
    """The data's digest now, or under way in a thread (large data whose columns hash without
    Python objects: numbers, booleans, categoricals and the text columns given factorized)."""
    if len(frame) >= DIGEST_THREAD_MIN_ROWS and all(
            c in levels or isinstance(t, pd.CategoricalDtype)
            or (t.kind in "biuf" and not isinstance(t, pd.api.extensions.ExtensionDtype))
            for c, t in frame.dtypes.items()):
        return PendingDigest(frame, levels)
    return dataset_sha256(frame, levels)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
