"""Cox partial likelihood in numpy: risk sets sorted once, one vectorized pass per Newton step.

The rows are sorted once by (stratum, time) (:class:`RiskSets`); every event block (distinct
event time within a stratum) knows where its risk set starts, where its deaths are, and how
many there are. One evaluation at ``beta`` (:func:`evaluate`) then costs a few passes over the
rows:

* ``S0_k`` (sum of ``exp(eta)`` over the risk set) from one reverse cumulative sum per stratum,
  ``D0_k`` / ``D1_k`` (sums over the deaths) from ``np.add.reduceat`` over the tied blocks;
* Efron's correction per death ``j`` of a block with ``d`` deaths, ``denom = S0 - (j/d) D0``
  (Breslow: ``j/d = 0``), as plain vectorized arithmetic over all deaths at once;
* the score ``sum_deaths x - sum_j xbar_j`` and the information
  ``sum_j [(S2 - f D2) / denom - xbar xbar']`` without forming any ``p x p`` matrix per row or
  per block: ``sum_k a_k S1_k = X' (r * A)`` with ``A_i`` the cumulative sum of
  ``a_k = sum_j 1/denom_kj`` over the event times up to row ``i``'s time, so the second-moment
  part is one weighted cross-product ``X' diag(w) X`` and the ``xbar xbar'`` part three
  ``K x p`` cross-products.

:func:`newton` maximizes with R's step-halving (a step that lowers the log-likelihood is
halved), stops when the Newton decrement is at rounding level, and flags a coefficient whose
next Newton step is still of order one at that point (monotone likelihood: it drifts towards
infinity), as ``coxph`` does ("Loglik converged before variable ...; coefficient may be
infinite").

statsmodels' ``PHReg`` is the reference (``hte_report.models.survival.fit_cox_phreg``; tests
agree to rel 1e-8), and R's ``survival::coxph`` the reference of the reference tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RiskSets:
    """Rows sorted by (stratum, time) and the event blocks of that order (K blocks, D deaths)."""

    order: np.ndarray  # (n,) original row of each sorted row
    bounds: np.ndarray  # (S+1,) sorted-row offsets of each stratum
    blk_bounds: np.ndarray  # (S+1,) block offsets of each stratum
    dead_rows: np.ndarray  # (D,) sorted rows of the deaths, grouped by block
    start: np.ndarray  # (K,) first sorted row of each block's risk set
    dstart: np.ndarray  # (K,) offset of each block's first death in dead_rows
    deaths: np.ndarray  # (K,) deaths per block
    kk: np.ndarray  # (D,) block of each death
    efron_frac: np.ndarray  # (D,) j / d for the j-th (0-based) death of its block
    last: np.ndarray  # (n,) last block at or before each sorted row's time (same stratum), -1
    seg: np.ndarray  # (M,) starts of the row segments summed by reduceat: each block's deaths,
    #                  then the rows up to the next block (or stratum end)
    seg_bounds: np.ndarray  # (S+1,) segment offsets of each stratum
    blk_seg: np.ndarray  # (K,) the segment of each block's deaths
    dead: np.ndarray  # (n,) 1.0 for a death, sorted
    chunks: tuple  # (row_lo, row_hi, seg_lo, seg_hi): row ranges of whole segments, ~CHUNK rows
    stratum: np.ndarray  # (K,) stratum code of each block
    time: np.ndarray  # (K,) time of each block

    @property
    def n(self) -> int:
        return len(self.order)

    def frac(self, ties: str) -> np.ndarray:
        return self.efron_frac if ties == "efron" else np.zeros(len(self.kk))


def risk_sets(time: np.ndarray, event: np.ndarray, strata: np.ndarray,
              order: np.ndarray | None = None) -> RiskSets:
    """Sort once by (stratum, time, deaths first) and index the event blocks. ``order``: that
    sort order when already known (e.g. a subset of rows of sorted risk sets, see
    :func:`subset_order`)."""
    time = np.asarray(time, dtype=float)
    strata = np.asarray(strata)
    n = len(time)
    ev = np.asarray(event, dtype=float)
    if order is None:
        order = np.lexsort((ev != 1, time, strata))  # the deaths of a time lead its rows
    t, s = time[order], strata[order]
    dead = ev[order] == 1
    new_s = np.concatenate([[True], s[1:] != s[:-1]]) if n else np.zeros(0, bool)
    new_g = new_s | np.concatenate([[True], t[1:] != t[:-1]]) if n else new_s
    bounds = np.concatenate([np.flatnonzero(new_s), [n]])
    seg_row = np.cumsum(new_s) - 1  # stratum segment of each sorted row
    grp = np.cumsum(new_g) - 1  # (stratum, time) group of each sorted row
    gstart = np.flatnonzero(new_g)
    dead_rows = np.flatnonzero(dead)
    blk_grp, dstart, deaths = np.unique(grp[dead_rows], return_index=True, return_counts=True)
    start = gstart[blk_grp]
    K = len(start)
    kk = np.repeat(np.arange(K), deaths)
    frac = (np.arange(len(kk)) - np.repeat(dstart, deaths)) / np.repeat(deaths, deaths)
    is_blk = np.zeros(len(gstart), dtype=np.int64)
    is_blk[blk_grp] = 1
    last = np.cumsum(is_blk)[grp] - 1  # blocks at or before each row's (stratum, time) group
    if K:
        other = (last >= 0) & (seg_row[start][np.maximum(last, 0)] != seg_row)
        last = np.where(other, -1, last)
    blk_bounds = np.searchsorted(start, bounds, side="left")
    seg = np.unique(np.concatenate([bounds[:-1], start, start + deaths]))
    seg = seg[seg < n]
    cut = np.unique(np.searchsorted(seg, np.arange(0, n, CHUNK)))  # chunks of whole segments
    cut = cut[cut < len(seg)]
    seg_hi = np.append(cut[1:], len(seg))
    row_hi = np.append(seg[cut[1:]], n)
    chunks = tuple(zip(seg[cut].tolist(), row_hi.tolist(), cut.tolist(), seg_hi.tolist()))
    return RiskSets(order=order, bounds=bounds, blk_bounds=blk_bounds, dead_rows=dead_rows,
                    start=start, dstart=dstart, deaths=deaths.astype(float), kk=kk,
                    efron_frac=frac, last=last, stratum=s[start], time=t[start], seg=seg,
                    seg_bounds=np.searchsorted(seg, bounds), blk_seg=np.searchsorted(seg, start),
                    dead=dead.astype(float), chunks=chunks)


def subset_order(rs: RiskSets, rows: np.ndarray) -> np.ndarray:
    """The sort order of the rows selected by the boolean mask ``rows`` (positions within the
    subset), from sorted risk sets of all rows: valid for any order-preserving recoding of the
    strata of the subset."""
    pos = np.cumsum(rows) - 1
    kept = rs.order[rows[rs.order]]
    return pos[kept]


def _rcumsum(a: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Reverse cumulative sums along axis 0 within each segment (sums over the risk set)."""
    out = np.empty_like(a)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        out[lo:hi] = np.cumsum(a[lo:hi][::-1], axis=0)[::-1]
    return out


def _cumsum(a: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Cumulative sums along axis 0 within each segment."""
    out = np.empty_like(a)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        out[lo:hi] = np.cumsum(a[lo:hi], axis=0)
    return out


CHUNK = 4096  # rows per pass of the n x p work (in cache: no n x p temporaries)


def _rows_pass(rs: RiskSets, Xs: np.ndarray, r: np.ndarray, c: np.ndarray):
    """``X' diag(w) X`` and ``X' (dead - w)`` with ``w = r c``, and the segment sums of
    ``r x``, chunk by chunk over whole segments, so every temporary stays small. (The score is
    summed row by row from ``dead - w``, not as a difference of two large sums, which would
    lose three digits.)"""
    p = Xs.shape[1]
    xtwx = np.zeros((p, p))
    score = np.zeros(p)
    seg1 = np.empty((len(rs.seg), p))
    w = r * c
    for lo, hi, slo, shi in rs.chunks:
        xc = Xs[lo:hi]
        rx = xc * r[lo:hi, None]
        seg1[slo:shi] = np.add.reduceat(rx, rs.seg[slo:shi] - lo, axis=0)
        xtwx += (rx.T * c[lo:hi]) @ xc
        score += xc.T @ (rs.dead[lo:hi] - w[lo:hi])
    return xtwx, score, seg1


def _xtwx(rs: RiskSets, Xs: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``X' diag(w) X``, chunk by chunk."""
    p = Xs.shape[1]
    out = np.zeros((p, p))
    for lo, hi, _, _ in rs.chunks:
        xc = Xs[lo:hi]
        out += (xc.T * w[lo:hi]) @ xc
    return out


def _at_last(cum: np.ndarray, last: np.ndarray) -> np.ndarray:
    """``cum[last]`` with zeros where a row precedes every event of its stratum (-1)."""
    ext = np.concatenate([np.zeros((1,) + cum.shape[1:]), cum])
    return ext[last + 1]


@dataclass(frozen=True)
class Evaluation:
    """Partial log-likelihood, score and information at ``beta``, with the block sums that the
    residuals, the baseline hazard and ``cox.zph`` reuse (all in sorted-row order)."""

    beta: np.ndarray
    loglik: float
    score: np.ndarray | None
    info: np.ndarray | None
    r: np.ndarray  # (n,) exp(eta), sorted
    S0: np.ndarray  # (K,)
    S1: np.ndarray | None  # (K, p)
    D0: np.ndarray  # (K,)
    D1: np.ndarray | None  # (K, p)
    inv: np.ndarray  # (D,) 1 / denom per death
    frac: np.ndarray  # (D,)


def evaluate(rs: RiskSets, Xs: np.ndarray, beta: np.ndarray, ties: str,
             derivatives: bool = True) -> Evaluation:
    """One pass at ``beta`` over the design ``Xs`` in sorted-row order."""
    eta = Xs @ beta
    top = float(np.max(eta)) if len(eta) else 0.0
    if top > 500:  # a diverging step (monotone likelihood): shift so exp cannot overflow;
        eta = eta - top  # the log-likelihood, score and information are shift-invariant
    with np.errstate(under="ignore"):
        r = np.exp(eta)
    dr = rs.dead_rows
    if not len(dr):
        raise ValueError("no events")
    seg0 = np.add.reduceat(r, rs.seg)  # sums over each block's deaths and the rows between
    S0 = _rcumsum(seg0, rs.seg_bounds)[rs.blk_seg]
    D0 = seg0[rs.blk_seg]
    frac = rs.frac(ties)
    denom = S0[rs.kk] - frac * D0[rs.kk]
    with np.errstate(divide="ignore", invalid="ignore"):
        loglik = float(eta[dr].sum() - np.log(denom).sum())
        inv = 1.0 / denom
    if not derivatives:
        return Evaluation(beta, loglik, None, None, r, S0, None, D0, None, inv, frac)
    a, b = _block_sums(rs, inv, frac)
    # row weight w = r c: c = sum of a_k over the event times up to the row's time, less b_k
    # for a death at t_k
    c = _at_last(_cumsum(a, rs.blk_bounds), rs.last)
    c[dr] -= b[rs.kk]
    xtwx, score, seg1 = _rows_pass(rs, Xs, r, c)
    S1 = _rcumsum(seg1, rs.seg_bounds)[rs.blk_seg]
    D1 = seg1[rs.blk_seg]
    info = xtwx - _xbar_cross(rs, S1, D1, inv, frac)
    info = (info + info.T) / 2
    return Evaluation(beta, loglik, score, info, r, S0, S1, D0, D1, inv, frac)


def _block_sums(rs: RiskSets, inv: np.ndarray, frac: np.ndarray, weight=None):
    """Per block ``a_k = sum_j 1/denom`` and ``b_k = sum_j f_j/denom`` (times a block weight)."""
    if not len(inv):
        return np.zeros(0), np.zeros(0)
    a = np.add.reduceat(inv, rs.dstart)
    b = np.add.reduceat(frac * inv, rs.dstart)
    if weight is not None:
        a, b = a * weight, b * weight
    return a, b


def _xbar_cross(rs, S1, D1, inv, frac, weight=None) -> np.ndarray:
    """``sum_kj w_k xbar_kj xbar_kj'`` with ``xbar_kj = (S1_k - f_j D1_k) / denom_kj``."""
    if not len(inv):
        return np.zeros((S1.shape[1], S1.shape[1]))
    inv2 = inv * inv
    c0 = np.add.reduceat(inv2, rs.dstart)
    c1 = np.add.reduceat(frac * inv2, rs.dstart)
    c2 = np.add.reduceat(frac * frac * inv2, rs.dstart)
    if weight is not None:
        c0, c1, c2 = c0 * weight, c1 * weight, c2 * weight
    out = (S1.T * c0) @ S1
    if np.any(frac):
        cross = (S1.T * c1) @ D1
        out += (D1.T * c2) @ D1 - cross - cross.T
    return out


def weighted_information(rs: RiskSets, Xs: np.ndarray, ev: Evaluation,
                         weight: np.ndarray) -> np.ndarray:
    """``sum_kj w_k [(S2 - f D2)/denom - xbar xbar']``: the information with each event block
    weighted (``cox.zph`` uses ``g(t_k)`` and ``g(t_k)^2``)."""
    a, b = _block_sums(rs, ev.inv, ev.frac, weight)
    w = ev.r * _at_last(_cumsum(a, rs.blk_bounds), rs.last)
    w[rs.dead_rows] -= ev.r[rs.dead_rows] * b[rs.kk]
    out = _xtwx(rs, Xs, w) - _xbar_cross(rs, ev.S1, ev.D1, ev.inv, ev.frac, weight)
    return (out + out.T) / 2


def mean_at_deaths(rs: RiskSets, ev: Evaluation) -> np.ndarray:
    """``sum_j xbar_kj`` per block (K x p)."""
    a, b = _block_sums(rs, ev.inv, ev.frac)
    return a[:, None] * ev.S1 - b[:, None] * ev.D1


def score_residuals(rs: RiskSets, Xs: np.ndarray, ev: Evaluation) -> np.ndarray:
    """Per-row score residuals (n x p, original row order), as R's
    ``residuals(coxph, type = "score")`` with Efron-weighted residuals for Efron fits."""
    p = Xs.shape[1]
    dr, kk = rs.dead_rows, rs.kk
    if not len(dr):
        return np.full((rs.n, p), np.nan)
    inv, frac, S1, D1 = ev.inv, ev.frac, ev.S1, ev.D1
    a, b = _block_sums(rs, inv, frac)  # sum 1/denom, sum f/denom
    inv2 = inv * inv
    c0 = np.add.reduceat(inv2, rs.dstart)
    c1 = np.add.reduceat(frac * inv2, rs.dstart)
    c2 = np.add.reduceat(frac * frac * inv2, rs.dstart)
    XH = S1 * c0[:, None] - D1 * c1[:, None]  # sum_j xbar_j / denom_j
    FXH = S1 * c1[:, None] - D1 * c2[:, None]  # sum_j f_j xbar_j / denom_j
    MX = (a[:, None] * S1 - b[:, None] * D1) / rs.deaths[:, None]  # mean_j xbar_j
    CH = _at_last(_cumsum(a, rs.blk_bounds), rs.last)
    CXH = _at_last(_cumsum(XH, rs.blk_bounds), rs.last)
    r = ev.r
    res = -r[:, None] * (Xs * CH[:, None] - CXH)
    xd, rd = Xs[dr], r[dr]
    res[dr] += xd - MX[kk] + rd[:, None] * (xd * b[kk][:, None] - FXH[kk])
    # rows of a stratum without events: no residual defined (R: NaN-free zeros; the old
    # implementation gave NaN and the sandwich ignored them)
    out = np.empty_like(res)
    out[rs.order] = res
    return out


@dataclass(frozen=True)
class NewtonResult:
    beta: np.ndarray
    ev: Evaluation
    loglik_init: float
    converged: bool
    iterations: int
    infinite: np.ndarray  # indices of coefficients that may be infinite
    message: str


def newton(rs: RiskSets, Xs: np.ndarray, ties: str, init: np.ndarray | None = None,
           maxiter: int = 60, need_info: bool = True) -> NewtonResult:
    """Newton–Raphson with step-halving; raises ``np.linalg.LinAlgError`` when the information
    at the start is singular. ``need_info=False``: only the maximized log-likelihood is
    wanted, so the last evaluation skips the derivatives (and the check for infinite
    coefficients)."""
    p = Xs.shape[1]
    beta = np.zeros(p) if init is None else np.asarray(init, dtype=float).copy()
    ev = evaluate(rs, Xs, beta, ties)
    if not np.isfinite(ev.loglik) and init is not None:
        beta = np.zeros(p)
        ev = evaluate(rs, Xs, beta, ties)
    ll_init = ev.loglik
    converged, message, it = False, "", 0
    for it in range(1, maxiter + 1):  # noqa: B007
        step = np.linalg.solve(ev.info, ev.score)
        decrement = float(ev.score @ step)
        last = decrement < 1e-16  # the step to take is the last one
        deriv = need_info or not last
        new = evaluate(rs, Xs, beta + step, ties, deriv)
        halvings = 0
        while not (new.loglik >= ev.loglik - 1e-12 * abs(ev.loglik)) and halvings < 30:
            step = step / 2
            new = evaluate(rs, Xs, beta + step, ties, deriv)
            halvings += 1
        if not np.isfinite(new.loglik):
            message = "the log-likelihood is not finite"
            break
        change = abs(new.loglik - ev.loglik)
        beta, ev = beta + step, new
        if last or (decrement < 1e-9 and change <= 1e-14 * abs(ev.loglik)):
            converged = True
            break
        if halvings == 30:
            message = "step-halving could not increase the log-likelihood"
            break
    else:
        message = f"no convergence in {maxiter} Newton iterations"
    infinite = np.zeros(0, dtype=int)
    if converged and ev.info is not None:
        try:
            nxt = np.linalg.solve(ev.info, ev.score)
        except np.linalg.LinAlgError:
            nxt = np.full(p, np.inf)
        infinite = np.flatnonzero(np.abs(nxt) > 1e-4 * np.maximum(1.0, np.abs(beta)))
        if len(infinite):
            converged = False
            message = "monotone likelihood: the log-likelihood converged before coefficient(s) did"
    return NewtonResult(beta, ev, ll_init, converged, it, infinite, message)
