"""A large observed design held as its sources, by arm (issue 21).

For ``y ~ treat * (age + C(region)) + sbp`` every column of the design is a product of data
columns and level indicators (:mod:`hte_report.design.columns`), and the columns of terms
containing the 0/1 treatment are the treatment times another such product. So with ``Z`` the
distinct products without the treatment (here 1, age, region indicators, sbp), a row of the
design is ``z C0`` on an untreated row and ``z C1`` on a treated one, where ``C1`` (q x p)
selects for each design column its product and ``C0`` is ``C1`` with the treatment columns
zeroed. :class:`ArmDesign` stores neither the design nor ``Z``: it writes ``Z`` for a block of
rows from the data's columns and codes when asked, and the sums of a pass are sums over the
two arms in ``Z`` space, lifted once per pass:

    X'WX = C0' (Z0'W0 Z0) C0 + C1' (Z1'W1 Z1) C1,   X b = Z (Ca b) on the rows of arm a.

That is half the columns and a quarter of the multiply-adds of the design's own products, and
no n x p array (137 MiB at 1e6 x 18). ``Z`` itself (q columns, half the design or less) is
written once, in the blocks' row order, and kept for the following passes while it takes at
most :data:`Z_CACHE_BYTES`; larger designs write it again in every pass. Everything else
gets numpy-like access: slices and row selections come back as dense blocks written from the
same products, ``X @ b`` and ``X.T @ v`` run by blocks, and ``np.asarray(X)`` materializes.
The values are those :func:`hte_report.design.columns.write` writes (the same products in the
same order; the treatment is exactly 0 or 1), checked against formulaic by the tests.
"""

from __future__ import annotations

import contextvars
import os
import threading

import numpy as np
import pandas as pd

from hte_report.data.levels import Levels

BLOCK = 1 << 13

#: ``Z`` of the observed design (n x q floats) is kept across passes up to this size: a pass
#: then reads it instead of writing it from the sources (14 % of a logit pass at 1e6 x 9).
Z_CACHE_BYTES = 512 << 20

#: Per-row vectors (outcome, offset, weights) kept in the blocks' row order, most recent first.
ARRANGED_KEPT = 4

#: Passes over the blocks run as this many fixed ranges (:meth:`ArmDesign.map_blocks`), whose
#: sums are added in range order, so that the numbers never depend on how the ranges ran.
#: With threads, ranges after the first run in their own threads (each range of at least
#: :data:`MIN_BLOCKS_PER_PART` blocks). :data:`THREADS`: True, False, or None (the default):
#: threads when the process may use two CPUs or more and the pass is called from the main
#: thread (never nested in a caller's worker threads, e.g. the bootstrap's). Measured on two
#: idle cores at 1e6 rows (issue 21, fourth session): a logit pass 24-26 ms of wall time in two
#: threads against 31-35 ms in one (the CPU time rises by a third); the whole binary analysis
#: 1.59-1.66 s against 1.64-2.37 s.
PARTS = 2
THREADS: bool | None = None
MIN_BLOCKS_PER_PART = 4


def _threads() -> bool:
    if THREADS is not None:
        return THREADS
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    return cpus >= 2


class ArmDesign:
    """The n x p design ``X`` (rows ``z C0`` untreated, ``z C1`` treated) from its sources.

    ``arm``: None for the observed design (the treatment ``t`` says each row's arm); 1 or 0
    for the counterfactual design with every row in that arm (:meth:`under`)."""

    ndim = 2
    dtype = np.dtype(float)

    def __init__(self, products: list[tuple], base: np.ndarray, treatment_columns: np.ndarray,
                 t: np.ndarray, values: dict, arm: int | None = None,
                 treatment: str | None = None):
        self.products = products  # per Z column: the sources multiplied, in order
        self.base = np.asarray(base, dtype=np.intp)  # per design column: its Z column
        self.tmask = np.zeros(len(base), bool)
        self.tmask[treatment_columns] = True
        self.t = t  # float 0/1 per row
        self.values = values  # source -> full-length array (numeric: float; level: codes)
        self.arm = arm
        self.treatment = treatment  # the data column of the treatment (see rows_of)
        self.shape = (len(t), len(base))
        self.q = len(products)
        self._arm_order = None  # see _by_arm
        self._z_blocks = None  # see _cached_blocks
        self._z_buffer: np.ndarray | None = None
        self._arranged: list = []  # see arranged
        #: ``(Z0'Z0, Z1'Z1)`` of the observed design, from the first pass over it (the
        #: estimability checks): a unit-weight least-squares fit then needs only ``X'y``
        self.unit_gram: tuple | None = None
        self._lock = threading.Lock()

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_columns(cls, columns: list[tuple], data, levels: dict[str, Levels], treatment: str,
                     observed: np.ndarray) -> ArmDesign | None:
        """From the sources of each design column (:func:`hte_report.design.columns.plan`, on
        data where the treatment column is 1 for every row) and the observed 0/1 treatment.
        None when a column is not of that form (the treatment twice in a product, or as a
        level indicator)."""
        tsrc = ("num", treatment)
        products: list[tuple] = []
        index: dict[tuple, int] = {}
        base, tcols = [], []
        for j, combo in enumerate(columns):
            if any(s[1] == treatment and s != tsrc for s in combo if len(s) > 1):
                return None
            k = sum(s == tsrc for s in combo)
            if k > 1:
                return None
            rest = tuple(s for s in combo if s != tsrc)
            if len(rest) > 1 and ("one",) in rest:
                rest = tuple(s for s in rest if s != ("one",))
            rest = rest or (("one",),)
            if rest not in index:
                index[rest] = len(products)
                products.append(rest)
            base.append(index[rest])
            if k:
                tcols.append(j)
        t = np.asarray(observed, dtype=float)
        if not np.all((t == 0.0) | (t == 1.0)):
            return None
        values = {}
        for prod in products:
            for src in prod:
                if src in values or src[0] == "one":
                    continue
                if src[0] == "num":
                    values[src] = data[src[1]].to_numpy(dtype=float)
                else:
                    values[src] = levels[src[1]].codes
        return cls(products, np.array(base), np.array(tcols, dtype=np.intp), t, values,
                   treatment=treatment)

    def under(self, arm: int) -> ArmDesign:
        """The design with every row in ``arm`` (1: ``X1``, 0: ``X0``), sharing the sources."""
        return ArmDesign(self.products, self.base, np.flatnonzero(self.tmask), self.t,
                         self.values, arm, self.treatment)

    def rows_of(self, frame, levels: dict[str, Levels]) -> np.ndarray | None:
        """The design's rows for another (small) frame of the same columns, e.g. reference
        profiles: the same products of its columns, level indicators (by the design's
        ``levels``) and treatment, without a formulaic call (20-40 ms each). None when a
        factor's value is not among the design's levels or the treatment is not 0/1: the
        caller then asks formulaic, which says what is wrong."""
        if self.treatment is None or self.treatment not in frame:
            return None
        values = {}
        for src in self.values:
            column = frame[src[1]] if src[1] in frame else None
            if column is None:
                return None
            if src[0] == "num":
                if not pd.api.types.is_numeric_dtype(column):
                    return None
                values[src] = column.to_numpy(dtype=float)
            else:
                if src[1] not in levels:
                    return None
                codes = pd.Index(levels[src[1]].values).get_indexer(column.to_numpy())
                if np.any(codes < 0):
                    return None
                values[src] = codes
        t = frame[self.treatment].to_numpy(dtype=float)
        if not np.all((t == 0.0) | (t == 1.0)):
            return None
        return self.dense(self.z_rows(np.arange(len(frame)), values), t)

    # -- blocks of Z -------------------------------------------------------------------------

    def z_rows(self, rows, values: dict | None = None, out: np.ndarray | None = None
               ) -> np.ndarray:
        """``Z`` on ``rows`` (a slice or integer positions) of the sources (``values``: other
        arrays of them, e.g. in another order), column-major (m x q); written into ``out``
        (q x m, rows contiguous) when given."""
        values = self.values if values is None else values
        m = len(range(*rows.indices(self.shape[0]))) if isinstance(rows, slice) else len(rows)
        out = np.empty((self.q, m)) if out is None else out
        cache = {}
        for j, prod in enumerate(self.products):
            col = out[j]
            for i, src in enumerate(prod):
                if src[0] == "one":
                    if i == 0:
                        col.fill(1.0)
                    continue
                if src not in cache:
                    cache[src] = values[src][rows]
                v = cache[src]
                if src[0] == "num":
                    if i == 0:
                        col[:] = v
                    else:
                        col *= v
                else:
                    if i == 0:
                        np.equal(v, src[2], out=col, casting="unsafe")
                    else:
                        col *= v == src[2]
        return out.T

    def arms_of(self, rows) -> np.ndarray | None:
        """The 0/1 treatment of ``rows`` (None when every row is in :attr:`arm`)."""
        return self.t[rows] if self.arm is None else None

    def blocks(self, start: int = 0, stop: int | None = None):
        """The rows by blocks of :data:`BLOCK` (blocks ``start`` to ``stop``), each as an
        :class:`ArmBlock`: its ``Z`` with the untreated rows first, so that every product of a
        pass is one product per arm on contiguous rows (no weights zeroing the other arm, no
        selection per row). Block k holds the rows ``order[k * BLOCK:(k + 1) * BLOCK]`` of one
        fixed order (the identity for a counterfactual design); :meth:`arranged` puts a
        per-row vector in that order."""
        n = self.shape[0]
        stop = self.n_blocks if stop is None else stop
        if self.arm is not None:
            none = np.empty((0, self.q), order="F")
            for k in range(start, stop):
                s, e = k * BLOCK, min(n, (k + 1) * BLOCK)
                Z = self.z_rows(slice(s, e))
                yield ArmBlock(slice(s, e), e - s if self.arm == 0 else 0,
                               Z if self.arm == 0 else none, none if self.arm == 0 else Z,
                               slice(s, e))
            return
        order, n0 = self._by_arm()
        cached = self._cached_blocks()
        q = self.q
        for k in range(start, stop):
            s, e = k * BLOCK, min(n, (k + 1) * BLOCK)
            rows, m0 = order[s:e], int(n0[k])
            parts = None if cached is None else cached[k]
            if parts is None:  # written by the first pass over block k (each thread its own)
                if cached is None:
                    parts = (self.z_rows(rows[:m0]), self.z_rows(rows[m0:]))
                else:  # into the block's own part of the kept buffer
                    buf = self._z_buffer
                    parts = (self.z_rows(rows[:m0], out=buf[s * q:(s + m0) * q]
                                         .reshape(q, m0)),
                             self.z_rows(rows[m0:], out=buf[(s + m0) * q:e * q]
                                         .reshape(q, e - s - m0)))
                    cached[k] = parts
            yield ArmBlock(rows, m0, parts[0], parts[1], slice(s, e))

    @property
    def n_blocks(self) -> int:
        return -(-self.shape[0] // BLOCK)

    def map_blocks(self, fn) -> list:
        """``fn(blocks)`` on :data:`PARTS` fixed ranges of the blocks, one after the other or
        (:data:`THREADS`) in threads, each with the caller's context (numpy's error state);
        the results in range order, for the caller to add in that order. The ranges depend on
        the number of blocks only, so neither the sums' rounding nor any number depends on
        threads or cores (tested bit for bit)."""
        nb = self.n_blocks
        cuts = [nb * i // PARTS for i in range(PARTS + 1)]
        ranges = list(zip(cuts[:-1], cuts[1:]))
        if nb < PARTS * MIN_BLOCKS_PER_PART or not _threads():
            return [fn(self.blocks(a, b)) for a, b in ranges]
        results: list = [None] * PARTS
        errors: list = []

        def run(i, a, b):
            try:
                results[i] = fn(self.blocks(a, b))
            except BaseException as exc:  # re-raised in the caller
                errors.append(exc)

        workers = [threading.Thread(target=contextvars.copy_context().run,
                                    args=(run, i, a, b), daemon=True)
                   for i, (a, b) in enumerate(ranges) if i]
        for w in workers:
            w.start()
        run(0, *ranges[0])
        for w in workers:
            w.join()
        if errors:
            raise errors[0]
        return results

    def _by_arm(self):
        """The rows in block order with each block's untreated rows first, and the number of
        those per block: made once, so that each pass reads each arm's rows contiguously."""
        with self._lock:
            if self._arm_order is None:
                n = self.shape[0]
                order = np.empty(n, dtype=np.int32 if n < 2**31 else np.intp)
                n0 = []
                for s in range(0, n, BLOCK):
                    t = self.t[s:s + BLOCK]
                    untreated = np.flatnonzero(t == 0.0)
                    order[s:s + len(untreated)] = untreated + s
                    order[s + len(untreated):s + len(t)] = np.flatnonzero(t != 0.0) + s
                    n0.append(len(untreated))
                self._arm_order = (order, n0)
            return self._arm_order

    def _cached_blocks(self) -> list | None:
        """Slots for ``Z`` of every block (in :meth:`blocks` order), each written by the first
        pass over its block and kept, or None when ``Z`` would take more than
        :data:`Z_CACHE_BYTES`."""
        if self.shape[0] * self.q * 8 > Z_CACHE_BYTES:
            return None
        with self._lock:
            if self._z_blocks is None:
                # one allocation (page faults of huge pages, not of 4 KiB ones), each block's
                # two arms contiguous in it
                self._z_buffer = np.empty(self.shape[0] * self.q)
                self._z_blocks = [None] * self.n_blocks
            return self._z_blocks

    def block_order(self) -> np.ndarray:
        """The rows in the order of :meth:`blocks` (block k: positions ``k * BLOCK`` on)."""
        return self._by_arm()[0] if self.arm is None else np.arange(self.shape[0])

    def arranged(self, v: np.ndarray | None) -> np.ndarray | None:
        """A per-row vector in the row order of :meth:`blocks` (block k's rows are
        ``arranged(v)[blk.span]``), kept for the next passes (the last
        :data:`ARRANGED_KEPT` vectors, recognised by identity)."""
        if v is None or self.arm is not None:
            return v
        with self._lock:
            for i, (orig, out) in enumerate(self._arranged):
                if orig is v:
                    if i:
                        self._arranged.insert(0, self._arranged.pop(i))
                    return out
        out = np.asarray(v)[self._by_arm()[0]]
        with self._lock:
            self._arranged = [(v, out)] + self._arranged[:ARRANGED_KEPT - 1]
        return out

    # -- coefficients and sums in Z space -----------------------------------------------------

    def coefficients(self, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(C0 b, C1 b)``: coefficients on ``Z`` of the untreated and the treated rows
        (``b``: p, or p x K)."""
        b = np.asarray(b, dtype=float)
        shape = (self.q,) + b.shape[1:]
        c1, c0 = np.zeros(shape), np.zeros(shape)
        np.add.at(c1, self.base, b)
        keep = ~self.tmask
        np.add.at(c0, self.base[keep], b[keep])
        return c0, c1

    def eta(self, Z: np.ndarray, t: np.ndarray | None, c0, c1) -> np.ndarray:
        """``X b`` on a block from its ``Z`` and treatment (coefficients from
        :meth:`coefficients`)."""
        if t is None:
            return Z @ (c1 if self.arm == 1 else c0)
        e1 = Z @ c1
        e0 = Z @ c0
        return np.where(t[:, None] > 0, e1, e0) if e1.ndim == 2 else np.where(t > 0, e1, e0)

    def lift(self, A0, A1) -> np.ndarray:
        """``C0' A0 C0 + C1' A1 C1`` (q x q sums in Z space to p x p; either may be None)."""
        p = self.shape[1]
        out = np.zeros((p, p))
        ix = np.ix_(self.base, self.base)
        if A1 is not None:
            out += A1[ix]
        if A0 is not None:
            keep = ~self.tmask
            out += A0[ix] * np.outer(keep, keep)
        return out

    def lift_vectors(self, r0, r1) -> np.ndarray:
        """``C0' r0 + C1' r1`` for q-vectors, or for q x K (rows of Z space to rows of the
        design); either may be None."""
        ref = r0 if r0 is not None else r1
        out = np.zeros((self.shape[1],) + np.shape(ref)[1:])
        if r1 is not None:
            out += r1[self.base]
        if r0 is not None:
            keep = (~self.tmask).astype(float)
            out += r0[self.base] * (keep if out.ndim == 1 else keep[:, None])
        return out

    def selection(self) -> tuple[np.ndarray, np.ndarray]:
        """``(C0, C1)`` as q x p 0/1 matrices."""
        C1 = np.zeros((self.q, self.shape[1]))
        C1[self.base, np.arange(self.shape[1])] = 1.0
        return C1 * ~self.tmask, C1

    def quadratic_forms(self, M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(C0 M C0', C1 M C1')``: a p x p quadratic form of the design's rows in Z space."""
        C0, C1 = self.selection()
        return C0 @ M @ C0.T, C1 @ M @ C1.T

    def dense(self, Z: np.ndarray, t: np.ndarray | None) -> np.ndarray:
        """The design's rows (column-major) from their ``Z`` and treatment."""
        X = np.asfortranarray(Z[:, self.base])
        tc = np.flatnonzero(self.tmask)
        if tc.size:
            if t is None:
                if self.arm == 0:
                    X[:, tc] = 0.0
            else:
                X[:, tc] *= t[:, None]
                X[:, tc] += 0.0  # -0.0 (a negative value times 0) as 0.0
        return X

    def gram(self, w: np.ndarray | None = None) -> np.ndarray:
        """``X' diag(w) X`` (``w`` None: ``X'X``) by blocks, in Z space."""
        A0 = A1 = None
        for blk in self.blocks():
            a0, a1 = blk.gram(None if w is None else w[blk.rows])
            A0, A1 = accumulate(A0, a0), accumulate(A1, a1)
        return self.lift(A0, A1)

    # -- numpy-like access ---------------------------------------------------------------------

    def __len__(self) -> int:
        return self.shape[0]

    def _rows(self, rows) -> np.ndarray:
        if isinstance(rows, slice):
            start, stop, step = rows.indices(self.shape[0])
            if step != 1:
                rows = np.arange(start, stop, step)
            elif stop - start > 4 * BLOCK:
                out = np.empty((max(stop - start, 0), self.shape[1]), order="F")
                for s in range(start, stop, BLOCK):
                    e = min(stop, s + BLOCK)
                    out[s - start:e - start] = self._rows(slice(s, e))
                return out
            else:
                return self.dense(self.z_rows(rows), self.arms_of(rows))
        rows = np.asarray(rows)
        if rows.dtype == bool:
            if rows.shape != (self.shape[0],):
                raise IndexError("boolean row index of the wrong length")
            rows = np.flatnonzero(rows)
        if rows.ndim != 1 or (rows.size and rows.dtype.kind not in "iu"):
            raise IndexError("rows must be a slice, a boolean mask or integer positions")
        rows = np.where(rows < 0, rows + self.shape[0], rows).astype(np.intp)
        if rows.size and (rows.min() < 0 or rows.max() >= self.shape[0]):
            raise IndexError(f"row index out of range for {self.shape[0]} rows")
        return self.dense(self.z_rows(rows), self.arms_of(rows))

    def __getitem__(self, key):
        if isinstance(key, tuple):
            rows, cols = key
            return self._rows(rows)[:, cols]
        if isinstance(key, (int, np.integer)):
            return self._rows(np.array([key]))[0]
        return self._rows(key)

    def __array__(self, dtype=None, copy=None):
        X = self._rows(slice(None))
        return X if dtype is None else X.astype(dtype, copy=False)

    def __matmul__(self, b):
        b = np.asarray(b, dtype=float)
        c0, c1 = self.coefficients(b)
        out = np.empty((self.shape[0],) + b.shape[1:])
        for blk in self.blocks():
            out[blk.rows] = blk.eta(c0, c1)
        return out

    @property
    def T(self) -> _Transposed:
        return _Transposed(self)

    def copy(self, order="K") -> np.ndarray:
        return np.asarray(self)


class ArmBlock:
    """A block of rows of an :class:`ArmDesign`: ``rows`` (a slice, or row positions with the
    untreated rows first), the first ``n0`` of which are untreated, and ``Z`` of each arm as
    its own column-major array (``Z0``, ``Z1``: contiguous, so that ``np.dot`` hands every
    product to BLAS, as fast as matmul, and, unlike matmul here, releases the GIL while it
    runs). Per-row vectors of the block are ``v[rows]``, or ``X.arranged(v)[span]`` without a
    gather; sums over it come back per arm (None: no rows)."""

    __slots__ = ("rows", "n0", "Z0", "Z1", "span")

    def __init__(self, rows, n0: int, Z0: np.ndarray, Z1: np.ndarray, span: slice):
        self.rows, self.n0, self.Z0, self.Z1, self.span = rows, n0, Z0, Z1, span

    @property
    def m(self) -> int:
        return len(self.Z0) + len(self.Z1)

    @property
    def Z(self) -> np.ndarray:
        """``Z`` of the block's rows (a new array; the passes use ``Z0`` and ``Z1``)."""
        return np.asfortranarray(np.concatenate([self.Z0, self.Z1]))

    def eta(self, c0, c1) -> np.ndarray:
        """``X b`` on the block's rows (``(c0, c1)`` from :meth:`ArmDesign.coefficients`)."""
        n0 = self.n0
        out = np.empty((self.m,) + np.shape(c0)[1:])
        if n0:
            np.dot(self.Z0, c0, out=out[:n0])
        if len(self.Z1):
            np.dot(self.Z1, c1, out=out[n0:])
        return out

    def _parts(self):
        return (self.Z0 if len(self.Z0) else None), (self.Z1 if len(self.Z1) else None)

    def gram(self, w: np.ndarray | None) -> tuple:
        """``(Z0' W Z0, Z1' W Z1)``."""
        n0 = self.n0
        Z0, Z1 = self._parts()
        return (None if Z0 is None else
                np.dot(Z0.T, Z0 if w is None else Z0 * w[:n0, None]),
                None if Z1 is None else
                np.dot(Z1.T, Z1 if w is None else Z1 * w[n0:, None]))

    def cross(self, v: np.ndarray) -> tuple:
        """``(Z0' v0, Z1' v1)`` for a vector or a matrix of the block's rows."""
        n0 = self.n0
        Z0, Z1 = self._parts()
        return (None if Z0 is None else np.dot(Z0.T, v[:n0]),
                None if Z1 is None else np.dot(Z1.T, v[n0:]))

    def quadratic(self, Q0, Q1) -> np.ndarray:
        """``x' M x`` for each row (``(Q0, Q1)`` from :meth:`ArmDesign.quadratic_forms`)."""
        n0 = self.n0
        out = np.empty(self.m)
        Z0, Z1 = self._parts()
        if Z0 is not None:
            out[:n0] = np.einsum("ij,ij->i", np.dot(Z0, Q0), Z0)
        if Z1 is not None:
            out[n0:] = np.einsum("ij,ij->i", np.dot(Z1, Q1), Z1)
        return out

    def arms(self) -> np.ndarray:
        """The 0/1 treatment of the block's rows."""
        t = np.ones(self.m)
        t[:self.n0] = 0.0
        return t


def accumulate(total, term):
    """``total + term`` where None stands for nothing yet (or nothing to add)."""
    if term is None:
        return total
    return term if total is None else total + term


def rows_times(X, rows: slice, b: np.ndarray) -> np.ndarray:
    """``X[rows] @ b`` for a dense design or an :class:`ArmDesign` (without its dense rows)."""
    if isinstance(X, ArmDesign):
        c0, c1 = X.coefficients(b)
        return X.eta(X.z_rows(rows), X.arms_of(rows), c0, c1)
    return X[rows] @ b


class _Transposed:
    """``X.T`` of an :class:`ArmDesign`, for ``X.T @ v`` by blocks."""

    def __init__(self, X: ArmDesign):
        self.X = X
        self.shape = X.shape[::-1]

    def __matmul__(self, v):
        X = self.X
        if v is X:
            return X.gram()
        v = np.asarray(v, dtype=float)
        r0 = r1 = None
        for blk in X.blocks():
            a0, a1 = blk.cross(v[blk.rows])
            r0, r1 = accumulate(r0, a0), accumulate(r1, a1)
        return X.lift_vectors(r0, r1)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.X, dtype=dtype).T
