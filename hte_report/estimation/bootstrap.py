"""Nonparametric (and cluster) bootstrap of standardized effects, by frequency weights.

Each replicate draws multinomial frequency weights over rows (or over clusters, expanded to their
rows), refits every working model on the weighted data, and recomputes the standardized
subgroup and overall effects from the same counterfactual designs. Replicates are solved in
batches: one pass over the data advances the chord iterations (score equations of every
replicate, full-sample information as the fixed matrix) of all replicates in the batch and of
every working model, and another gives their subgroup means. The first iteration starts at
the full-sample estimate, where the means do not depend on the replicate: its pass is one
product of the weights with the design times the full-sample score residuals, for every model
at once; the same product gives ``X' diag(c) y``, so that the other passes of canonical links
need only the weighted means. Every replicate is solved to the same tolerance as an ordinary
fit (tests compare with statsmodels on explicitly resampled rows); only the effect estimates
are kept, so memory is flat in the number of replicates. Every replicate has its own child
seed (``SeedSequence``; its weights are the counts of ``n`` indices drawn with
``Generator.integers``) and batches are fixed sets of columns (replicates, then the full
sample and the jackknife samples, which share the last batch), so results do not depend on how
batches are spread over the threads that solve them (one per core by default).

Intervals: percentile, and BCa (Efron 1987) with the acceleration from a grouped jackknife
(``jackknife_groups`` random groups of rows or clusters; a delete-one jackknife is infeasible at
large n and converges to the same value as the groups grow).

Degenerate replicates. A resample can leave a subgroup's arm without events (or with events
only), or without patients; then the working model has no finite estimate there (a log or
logit coefficient drifts towards infinity until the iterations stop, giving a ratio of 1e-13
or an SE of the log ratio of 13) and the number is meaningless. A replicate is *degenerate*
for a row (subgroup x model x scale) by the same rules that make ``fit()`` report the row not
estimable, applied to the replicate's frequency weights and fit:

* an arm without patients (all patients, or a level of a categorical modifier): every model
  and scale;
* an arm with zero events, or (binary) with every patient an event (all patients, or a level
  of a categorical modifier): ratio scales, and every scale of a log or logit model
  (``glm.not_estimable``). A display category of a continuous modifier (a quarter of age) has
  no coefficient of its own: the linear model in age has a finite estimate whatever one
  quarter's arm holds, so its cells are not counted (the rules below still apply to it);
* a ratio from standardized means outside the range of a risk or rate (a linear model's mean
  <= 0, or >= 1 for an odds ratio; ``fit()``'s "predicts a mean outside the range"): the
  ratio does not exist there, so an OLS-based RR is never formed from a negative risk;
* a log or logit model whose standardized risk in the subgroup is within ``EDGE`` of 0
  (or, logit, of 1): a fit drifting to the boundary (quasi-separation) that the cell counts
  do not show;
* no finite estimate (a refit that failed).

Degenerate replicates are counted per row (``n_degenerate``, the reasons in ``note``) and left
out (their replicate values are NaN). Left out, they could all belong in one tail (a
replicate without treated events has, in the limit, RR = 0), so leaving out a fraction f moves
the tail probability of a percentile limit by at most f: with at most ``DEGENERATE_MAX``
(1%; these rules and the summary are in :mod:`hte_report.estimation.bootstrap_summary`)
of the replicates degenerate, a 95% interval is still at least a 94% interval, and the
row's SE and intervals are reported from the others; with more, they are withheld (NaN, the
note says why). A degenerate jackknife sample makes the BCa acceleration undefined: the BCa
limits are withheld, the percentile limits kept. A full sample that is degenerate makes the
row not estimable (estimate NaN), as in ``fit()``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg

from hte_report.data.prepare import read_data
from hte_report.design.build import subgroups
from hte_report.errors import DataError, HTEReportWarning, short
from hte_report.estimation.bootstrap_summary import cell_codes, effect_codes, summarize
from hte_report.estimation.contrasts import RowGroups
from hte_report.estimation.glm import (
    arm_counts,
    fit_models,
    not_estimable,
    scales_of,
    sparse_cells,
)
from hte_report.estimation.profiles import OVERALL
from hte_report.estimation.setup import setup
from hte_report.models.fast import Family, block_pass, irls, one_blas_thread
from hte_report.spec.options import (
    MODELS,
    Cluster,
    OptionError,
    check_conf_level,
    check_flags,
    check_integer,
    checked_arguments,
)


@dataclass(frozen=True)
class BootstrapResult:
    """Bootstrap intervals (tidy frame) and, when kept, the replicate estimates (B x K)."""

    intervals: pd.DataFrame
    replicates: np.ndarray | None
    seed: int
    B: int


#: Replicates solved together in one pass over the data (their weights take
#: n x BATCH x 2 bytes); batches are fixed sets of columns (replicates, full sample, jackknife
#: samples), so results do not depend on how batches are spread over threads. 28: the 221
#: columns of the default analysis (200 replicates, the full sample, 20 jackknife samples) are
#: 8 batches, even over 2 cores; 32 and 64 were not faster on one core (issue 21).
BATCH = 28
#: A replicate has converged when its coefficients move by less than this (relative).
TOL = 1e-10
MAXITER = 30
#: Rows per block in the replicates' passes: a block of the R x rows matrices stays in cache
#: (the core's 2.5 MiB L2 here). A whole batch took 2.7 s with 512 rows, 2.8 s with 1024 and
#: 2.9-3.0 s with 2048 (issue 21, one thread, interleaved, on the loaded machine).
ROWS = 1 << 9


@dataclass(frozen=True)
class _Model:
    """A working model as the bootstrap needs it: full-sample estimate and the Cholesky factor
    of its information (the fixed matrix of the replicates' chord iterations)."""

    name: str
    family: Family
    params: np.ndarray
    chol: tuple
    kinds: tuple  # (kind, scale) per reported effect scale
    X: np.ndarray  # the design as fitted (rows times exposure for identity links)
    offset: np.ndarray | None  # log exposure for log links
    #: score residual ``(y - mu) d/v`` of every row at the full-sample estimate: the first
    #: chord pass of every replicate starts there, so it needs no per-replicate predictions
    resid: np.ndarray


def _model(fm, X, y, exposure, kinds) -> _Model:
    info = MODELS[fm.name]
    fam = Family(info.family, info.link)
    Xf = X * exposure[:, None] if (exposure is not None and fam.link == "identity") else X
    off = np.log(exposure) if (exposure is not None and fam.link == "log") else None
    with one_blas_thread(), np.errstate(all="ignore"):
        information = block_pass(Xf, y, fam, fm.params, off=off).info
        eta = Xf @ fm.params + (0.0 if off is None else off)
        mu, d = fam.mean(eta)
        resid = (y - mu) if fam.canonical else (y - mu) * d / fam.variance(mu)
    return _Model(fm.name, fam, fm.params, linalg.cho_factor(information), tuple(kinds), Xf,
                  off, resid)


@dataclass(frozen=True)
class _Job:
    models: tuple[_Model, ...]
    X: np.ndarray  # the design (the models without exposure are fitted on it)
    X1: np.ndarray  # every row with treatment = 1
    treatment_columns: np.ndarray  # zeroed for predictions under treatment = 0
    y: np.ndarray
    masks: np.ndarray  # K x n boolean: the whole sample and every subgroup
    unit: np.ndarray | None  # resampling unit per row (cluster code); None: the rows
    n_units: int
    treated: np.ndarray  # boolean: the treated rows (arm counts of degenerate replicates)
    family: str  # "continuous", "binary" or "count"
    #: per group (masks): whether its arm counts decide degenerate replicates (all patients
    #: and levels of categorical modifiers; not display categories of continuous ones)
    cellwise: np.ndarray


def _counts(seed, n_units: int) -> np.ndarray:
    """Multinomial counts of ``n_units`` draws with replacement (drawn as indices, counted)."""
    rng = np.random.default_rng(seed)
    return np.bincount(rng.integers(0, n_units, n_units), minlength=n_units)


def replicate_weights(seed, n_units: int, unit: np.ndarray) -> np.ndarray:
    """Frequency weight of every row in the replicate drawn from ``seed``: multinomial counts
    of ``n_units`` draws with replacement (drawn as indices, then counted), expanded to rows."""
    return _counts(seed, n_units)[unit].astype(float)


#: The full sample as a column of a batch (every weight 1).
FULL = "full"


@dataclass(frozen=True)
class _Deleted:
    """A column of the grouped jackknife: the sample without group ``group`` of ``groups``
    (random groups of rows or clusters, drawn from ``seed``)."""

    group: int
    groups: int
    seed: int


def _members(job: _Job, groups: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    member = rng.permutation(job.n_units) % groups
    return member if job.unit is None else member[job.unit]


def _weights(job: _Job, columns: list) -> np.ndarray:
    """Frequency weights of a batch, one row each (R x n): replicates (drawn from their
    ``SeedSequence``), the full sample (:data:`FULL`) and jackknife samples (:class:`_Deleted`).
    Counts are small integers, stored exactly as uint16 (each row is contiguous, so filling it
    and reading a block of rows in every pass are cheap)."""
    W = np.empty((len(columns), len(job.y)), np.uint16)
    member = {}
    for j, col in enumerate(columns):
        if isinstance(col, _Deleted):
            key = (col.groups, col.seed)
            if key not in member:
                member[key] = _members(job, col.groups, col.seed)
            W[j] = member[key] != col.group
        elif isinstance(col, str):
            W[j] = 1
        else:
            c = _counts(col, job.n_units)
            if c.max() > np.iinfo(np.uint16).max:  # pragma: no cover - astronomically unlikely
                W = W.astype(float)
                c = c.astype(float)
            W[j] = c if job.unit is None else c[job.unit]
    return W


def _sign(fam: Family) -> float:
    """Logit predictors are formed negated (coefficients times -1), so that the mean
    ``1 / (1 + exp(-eta))`` needs no pass to negate them."""
    return -1.0 if (fam.family, fam.link) == ("binomial", "logit") else 1.0


def _mean_(fam: Family, E: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """The mean for linear predictors ``E`` (times :func:`_sign`), times the weights ``w``
    if given, computed in place."""
    if _sign(fam) < 0:  # E = -eta: w / (1 + exp(-eta)), in place (faster than expit)
        np.exp(E, out=E)
        E += 1.0
        return np.divide(1.0 if w is None else w, E, out=E)
    if fam.link == "log":
        np.exp(E, out=E)
    elif fam.link != "identity":  # pragma: no cover - every model's link is handled above
        E[...] = fam.mean(E)[0]
    if w is not None:
        E *= w
    return E


def _block(buf: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """A contiguous rows x cols matrix in the preallocated (flat) ``buf``."""
    return buf[:rows * cols].reshape(rows, cols)


def _first_pass(job: _Job, W: np.ndarray):
    """Per model: the scores (p x R) of every replicate at the full-sample estimates, and for
    canonical links ``X' diag(c) y`` (p x R, the constant part of their scores); the total
    weight of every group (R x K); the arm counts of every group (R x 3K: treated patients,
    treated events, control events; R x K, treated patients, for continuous outcomes). At the
    full-sample estimates the means do not depend on the
    replicate, so ``X' diag(c) r`` is a product ``(X r)' W'``: one product per block for every
    model, their left-hand rows stacked (one pass over the data, weights read once)."""
    K, models = job.masks.shape[0], job.models
    designs = list({id(m.X): m.X for m in models if m.family.canonical}.values())
    parts = [K] + [D.shape[1] for D in designs] + [m.X.shape[1] for m in models]
    ends = np.cumsum([0] + parts)
    T = np.zeros((ends[-1], W.shape[0]))
    buf = np.empty(ends[-1] * ROWS)
    # arm counts of every group (treated patients, treated events, control events), in a
    # product of their own so that the sums above are the same numbers with or without them
    events = job.family != "continuous"
    A = 3 * K if events else K
    C, abuf = np.zeros((A, W.shape[0])), np.empty(A * ROWS)
    for s in range(0, len(job.y), ROWS):
        e = min(s + ROWS, len(job.y))
        L, yb = _block(buf, ends[-1], e - s), job.y[s:e]
        L[:K] = job.masks[:, s:e]
        for D, a, b in zip(designs, ends[1:], ends[2:]):
            np.multiply(D[s:e].T, yb, out=L[a:b])
        for m, a, b in zip(models, ends[1 + len(designs):], ends[2 + len(designs):]):
            np.multiply(m.X[s:e].T, m.resid[s:e], out=L[a:b])
        Wb = W[:, s:e].T.astype(float)
        T += L @ Wb
        M = _block(abuf, A, e - s)
        np.multiply(L[:K], job.treated[s:e], out=M[:K])
        if events:
            np.multiply(M[:K], yb, out=M[K:2 * K])
            np.multiply(L[:K], yb, out=M[2 * K:])
            M[2 * K:] -= M[K:2 * K]
        C += M @ Wb
    cols = [T[a:b] for a, b in zip(ends[:-1], ends[1:])]
    Y = {id(D): c for D, c in zip(designs, cols[1:])}
    G0 = cols[1 + len(designs):]
    return (G0, [Y.get(id(m.X)) if m.family.canonical else None for m in models], cols[0].T,
            C.T)


class _Chord:
    """The chord iterations of the R weighted refits of one model (weights: rows of W).

    Every replicate solves its own score equations ``X' diag(c) (y - mu) d/v = 0`` exactly (to
    :data:`TOL`); the iterations use the full-sample information as a fixed matrix (chord
    method), so one pass over the data serves all R replicates with two thin matrix products
    instead of a p x p information per replicate. The contraction rate is of order
    1/sqrt(n); a replicate that does not converge is refitted by ordinary Fisher scoring.
    For canonical links the scores are ``Y - X' diag(c) mu`` (``Y = X' diag(c) y``, p x R,
    from the first pass): a pass needs the weighted means only."""

    def __init__(self, m: _Model, W: np.ndarray, n: int, Y: np.ndarray | None):
        R = W.shape[0]
        self.m, self.Y = m, Y
        self.B = np.repeat(m.params[:, None], R, axis=1)
        self.scale = n / W.sum(axis=1, dtype=float)  # information scales with the total weight
        self.active = np.arange(R)
        self.prev = np.full(R, np.inf)

    def rows(self):
        """The replicates still iterating (a slice while all are: no copies)."""
        return slice(None) if len(self.active) == len(self.prev) else self.active

    def scores(self, S: np.ndarray) -> np.ndarray:
        """The scores (p x active) from the pass's sums S (active x p, see :func:`_weighted_`)."""
        return S.T if self.Y is None else self.Y[:, self.rows()] - S.T

    def update(self, G: np.ndarray) -> bool:
        """One step from the scores G (p x active); whether any replicate is still iterating."""
        active, prev = self.active, self.prev
        step = linalg.cho_solve(self.m.chol, G) * self.scale[active]
        self.B[:, active] += step
        size = np.max(np.abs(step), axis=0) / (1 + np.max(np.abs(self.B[:, active]), axis=0))
        bad = ~np.isfinite(size) | (size > prev[active])  # diverging: leave to Fisher scoring
        prev[active] = size
        keep = ~((size <= TOL) | bad)
        if bad.any():
            prev[active[bad]] = np.inf
        self.active = active[keep]
        return bool(len(self.active))

    def finish(self, job: _Job, W: np.ndarray) -> np.ndarray:
        for r in np.flatnonzero(~(self.prev <= TOL)):
            self.B[:, r] = _refit(job, self.m, W[r].astype(float))
        return self.B


def _chords(job: _Job, W: np.ndarray, G0: list[np.ndarray], Y: list) -> list[np.ndarray]:
    """Coefficients (p x R per model) of the weighted refits of every model (``G0``: their
    scores at the full-sample estimates, ``Y``: ``X' diag(c) y`` for canonical links, from
    :func:`_first_pass`). The models iterate in lockstep: one pass over the data serves every
    model still iterating."""
    chords = [_Chord(m, W, len(job.y), y) for m, y in zip(job.models, Y)]
    live = [c for c, g in zip(chords, G0) if c.update(g)]
    for _ in range(1, MAXITER):
        if not live:
            break
        live = [c for c, S in zip(live, _pass(job, W, live)) if c.update(c.scores(S))]
    return [c.finish(job, W) for c in chords]


def _weighted_(fam: Family, E: np.ndarray, y: np.ndarray, w: np.ndarray) -> None:
    """In place, for linear predictors E (rows: replicates; times :func:`_sign`): ``w mu``
    for canonical links (their scores are ``X' diag(c) y`` minus its product with the
    design), ``w (y - mu) d/v`` otherwise."""
    if fam.canonical:
        _mean_(fam, E, w)
        return
    mu, d = fam.mean(E)
    E[...] = (y[None, :] - mu) * d / fam.variance(mu)
    E *= w


def _stacked(chords: list[_Chord]) -> np.ndarray:
    """The coefficients of the replicates still iterating, a row each (times :func:`_sign`),
    models stacked."""
    return np.vstack([c.B[:, c.rows()].T * _sign(c.m.family) for c in chords])


def _pass(job: _Job, W: np.ndarray, chords: list[_Chord]) -> list[np.ndarray]:
    """Sums ``X' diag(c) u`` (active x p; ``u`` from :func:`_weighted_`) of the replicates
    still iterating, for every model in ``chords``: one pass over the data. Models on the
    design itself (no exposure) share the two products of each block (their coefficients
    stacked)."""
    on_design = [c for c in chords if c.m.X is job.X and c.m.offset is None]
    groups = [on_design] if on_design else []
    groups += [[c] for c in chords if c not in on_design]
    out = {}
    for group in groups:
        for c, S in zip(group, _group_pass(job, W, group)):
            out[id(c)] = S
    return [out[id(c)] for c in chords]


def _group_pass(job: _Job, W: np.ndarray, chords: list[_Chord]) -> list[np.ndarray]:
    """:func:`_pass` for models on one design (and offset): the predictors of all their
    replicates are one product per block, the sums another."""
    X, off, y = chords[0].m.X, chords[0].m.offset, job.y
    Bt = _stacked(chords)
    ends = np.cumsum([0] + [len(c.active) for c in chords])
    # family, rows of E, weights of the replicates still iterating (a view while all are)
    parts = [(c.m.family, a, b, W[c.rows()]) for c, a, b in zip(chords, ends[:-1], ends[1:])]
    S = np.zeros((len(Bt), X.shape[1]))
    buf, part = np.empty(len(Bt) * ROWS), np.empty_like(S)
    for s in range(0, len(y), ROWS):
        e = min(s + ROWS, len(y))
        Xb = X[s:e]
        E = np.matmul(Bt, Xb.T, out=_block(buf, len(Bt), e - s))
        if off is not None:
            E += off[None, s:e] * _sign(chords[0].m.family)
        for fam, a, b, Wc in parts:
            _weighted_(fam, E[a:b], y[s:e], Wc[:, s:e])
        S += np.matmul(E, Xb, out=part)
    return [S[a:b] for a, b in zip(ends[:-1], ends[1:])]


def _refit(job: _Job, m: _Model, w: np.ndarray) -> np.ndarray:
    try:
        with np.errstate(all="ignore"):
            b, _eta, converged, _it = irls(m.X, job.y, m.family.family, m.family.link,
                                           weights=w, offset=m.offset, start=m.params)
    except (np.linalg.LinAlgError, ValueError):
        converged = False
    return b if converged else np.full(len(m.params), np.nan)


def _means(job: _Job, coefs: list[np.ndarray], W: np.ndarray, N: np.ndarray):
    """Weighted mean predictions under treatment 1 and 0 in every group (K x R each), for
    every model (coefficients ``coefs``, p x R each; ``N``: group totals, R x K): one pass,
    the models' products stacked."""
    R = W.shape[0]
    both = []
    for m, Bm in zip(job.models, coefs):
        B1 = Bm.T * _sign(m.family)
        B0 = B1.copy()
        B0[:, job.treatment_columns] = 0.0  # X1 @ B0 = X0 @ Bm, without forming X0
        both += [B1, B0]
    both = np.vstack(both)  # 2R rows per model: treatment 1, then 0
    S = np.zeros((len(both), job.masks.shape[0]))
    buf, part = np.empty(len(both) * ROWS), np.empty_like(S)
    for s in range(0, len(job.y), ROWS):
        e = min(s + ROWS, len(job.y))
        E = np.matmul(both, job.X1[s:e].T, out=_block(buf, len(both), e - s))  # 2R per model
        for k, m in enumerate(job.models):  # every block of R rows, times the weights
            for a in range(2 * R * k, 2 * R * (k + 1), R):
                _mean_(m.family, E[a:a + R], W[:, s:e])
        S += np.matmul(E, job.masks[:, s:e].T.astype(float), out=part)
    return [(S[2 * R * k:2 * R * k + R].T / N.T, S[2 * R * k + R:2 * R * (k + 1)].T / N.T)
            for k in range(len(job.models))]


def _effect(kind: str, m1: np.ndarray, m0: np.ndarray) -> np.ndarray:
    if kind == "difference":
        return m1 - m0
    if kind == "ratio":
        return m1 / m0
    return (m1 / (1 - m1)) / (m0 / (1 - m0))


def _estimates(job: _Job, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All standardized effects (R x n_effects) for the frequency weights in the rows of W,
    and whether each is degenerate (R x n_effects, codes of
    :data:`~hte_report.estimation.bootstrap_summary.REASONS`, 0: it is not)."""
    out, codes = [], []
    with np.errstate(all="ignore"):  # numpy's error state is per thread
        G0, Y, N, C = _first_pass(job, W)
        coefs = _chords(job, W, G0, Y)
        cells = cell_codes(job, N, C)
        for m, (m1, m0) in zip(job.models, _means(job, coefs, W, N)):
            for kind, _scale in m.kinds:
                out.append(_effect(kind, m1, m0))
                codes.append(effect_codes(job, m, kind, cells, m1, m0, out[-1]))
    return np.vstack(out).T, np.vstack(codes).T


def _solve(job: _Job, batches: list[list], workers: int,
           progress: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The effects of every column of every batch (columns x effects, in order) and their
    degenerate codes (:func:`_estimates`), the batches
    solved on ``workers`` threads (numpy's products and element-wise loops release the GIL;
    BLAS on one thread, so the threads do not oversubscribe the cores). ``progress``: the text
    of a progress bar, if any."""
    def solve(columns: list) -> tuple[np.ndarray, np.ndarray]:
        return _estimates(job, _weights(job, columns))

    with one_blas_thread(), ThreadPoolExecutor(workers) as ex:
        it = ex.map(solve, batches)
        if progress:
            from rich.progress import track

            it = track(it, total=len(batches), description=progress, transient=True)
        parts = list(it)
    return np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])


@checked_arguments
def bootstrap(
    formula: str,
    data: object,
    *,
    B: int = 200,
    seed: int = 20260101,
    cluster: str | None = None,
    conf_level: float = 0.95,
    jackknife_groups: int = 20,
    n_jobs: int | None = None,
    progress: bool = False,
    keep_replicates: bool = False,
    treatment: str | None = None,
    reference: object = None,
    family: str | None = None,
    models: Sequence[str] | None = None,
    exposure: str | None = None,
    safe_formula: bool = False,
    variance: object = None,
) -> BootstrapResult:
    """Bootstrap intervals for every standardized subgroup and overall effect.

    Parameters
    ----------
    formula, data, treatment, reference, family, models, exposure, safe_formula
        As for :func:`hte_report.fit`. The model resampled is the formula's model as written
        (every interaction in one model: the joint analysis).
    B
        Number of replicates.
    seed
        Seed of the ``SeedSequence`` that gives every replicate its own stream (recorded).
    cluster
        Resample whole clusters (e.g. centres) instead of rows: the name of the cluster column.
    jackknife_groups
        Random groups of rows (or clusters) of the grouped jackknife that gives the BCa
        acceleration: at least 2.
    variance
        Not used (the bootstrap replaces the sandwich variance); accepted so that the options
        of a call to :func:`hte_report.fit` can be passed on. ``hr.Cluster('site')`` is
        refused: write ``cluster='site'``.
    n_jobs
        Threads solving batches of replicates at the same time (default: one per core, at
        most one per batch); results are identical for any value.

    Returns
    -------
    BootstrapResult whose ``intervals`` frame has ``modifier, level, scale, model, estimate,
    boot_se`` (for ratio scales the SE of the log ratio, as ``std_error`` in ``fit``),
    ``conf_low_percentile, conf_high_percentile, conf_low_bca, conf_high_bca, n_degenerate,
    note, B, seed, unit`` and, with ``keep_replicates``, the B x K replicate estimates
    (columns in frame order; NaN where a replicate is degenerate for the row).
    ``n_degenerate``: the replicates degenerate for the row (see the module's docstring: a
    subgroup arm without events, with events only or without patients, a ratio from a mean
    outside its range, a standardized risk at 0 or 1, no finite estimate), left out of its SE
    and intervals. ``note``: "not estimable: ..." where the full sample itself is (a subgroup
    with no events in an arm, a linear model's mean <= 0 under a ratio; the numbers left out,
    as in ``fit``); "SE and intervals not estimable: ..." where more than
    ``DEGENERATE_MAX`` (1%) of the replicates are degenerate (the estimate kept, SE and
    limits NaN); "BCa not estimable: ..." where a jackknife sample is degenerate; otherwise
    how many replicates were left out and why, or empty.
    """
    B = check_integer("B", B)
    n_jobs = n_jobs if n_jobs is None else check_integer("n_jobs", n_jobs, minimum=1)
    seed = check_integer("seed", seed)
    conf_level = check_conf_level(conf_level)
    check_flags(progress=progress, keep_replicates=keep_replicates)
    if B < 20:
        raise OptionError(f"B={B} is too few replicates for intervals: use at least 20 (200 or "
                         "more for percentile intervals, 1000 or more for BCa).")
    jackknife_groups = check_integer("jackknife_groups", jackknife_groups)
    if jackknife_groups < 2:
        raise OptionError(f"jackknife_groups={jackknife_groups} is too few: the BCa acceleration "
                          "is estimated from how the estimates vary between jackknife samples "
                          "(the data without one group), which needs at least 2 groups (the "
                          "default, 20, is usually enough).")
    if cluster is not None and not isinstance(cluster, str):
        raise OptionError(f"cluster= is the name of the column whose clusters are resampled "
                          f"(e.g. cluster='centre'), got {short(cluster)}.")
    if isinstance(variance, Cluster):
        if cluster is None or cluster != variance.column:
            raise OptionError(
                f"bootstrap() resamples clusters with cluster={variance.column!r}, not with "
                f"variance=hr.Cluster(...) (the bootstrap replaces the sandwich variance)"
                + ("." if cluster is None else f"; cluster={cluster!r} names another column."))
    fit_kwargs = dict(treatment=treatment, reference=reference, family=family, models=models,
                      exposure=exposure, safe_formula=safe_formula)
    from hte_report.data.largedata import CellData

    if isinstance(data, CellData):
        raise OptionError("bootstrap() resamples patients and needs one row per patient; "
                         "pre-aggregated cells (read_cells) cannot be resampled. Use the "
                         "sandwich intervals of fit(), or pass the row-level data.")
    if cluster is not None:
        data = read_data(data)  # once: setup below is given the frame
        if cluster not in data.columns:
            raise DataError(f"cluster column {cluster!r} is not in the data; cluster= names "
                            "the column whose clusters (e.g. centres) are resampled.")
    st = setup(formula, data, extra_columns=(cluster,), **fit_kwargs)
    design, family = st.design, st.family
    if design.wide:  # issue 21: the replicate fits below take dense designs
        raise OptionError(f"bootstrap() does not yet take a many-level adjustment factor "
                          f"({design.wide[0].expr}); use the sandwich intervals of fit() "
                          "(hr.Cluster for clustering), or merge rare levels.")
    frame = st.prep.frame
    subs = [None] + subgroups(design, st.parsed.treatment)
    n = len(st.y)
    masks = np.vstack([np.ones(n, bool) if s is None else s.rows for s in subs])
    if cluster is not None:
        unit = np.unique(frame[cluster].to_numpy(), return_inverse=True)[1]
        n_units = int(unit.max()) + 1
        if n_units < 2:
            raise DataError(f"cluster column {cluster!r} has a single cluster among the rows "
                            "analysed: resampling whole clusters needs several (many, for "
                            "intervals to be trusted); drop cluster= to resample rows.")
    else:
        unit, n_units = None, n
    models, labels = [], []
    # the full-sample fits, with the same fallbacks (and warnings) as fit()
    fitted, _rows, _notes = fit_models(st.model_names, design, st.y, None, st.expo, None,
                                        path="auto")
    # cells without events make ratio scales (and log/logit models) not estimable, as in fit()
    t = frame[st.parsed.treatment].to_numpy()
    groups = RowGroups.of([np.ones(n, dtype=bool)] + [s.rows for s in subs[1:]])
    sparse = sparse_cells(subs[1:], arm_counts(subs[1:], groups, t, st.y, st.expo, family), family)
    notes = []
    # the replicates' products run over small blocks of rows many times: a design held by
    # arm (design.arms) is written out once here
    X, X1 = np.asarray(design.X), np.asarray(design.X1)
    for fm in fitted:
        models.append(_model(fm, X, st.y, st.expo, scales_of(fm, family)))
        for kind, scale in models[-1].kinds:
            for s in subs:
                labels.append((OVERALL if s is None else s.modifier,
                               "" if s is None else s.level, scale, fm.label))
                key = None if s is None else (s.modifier, s.level)
                notes.append(not_estimable(fm, key, sparse, kind))
    kinds = {m.name: m.kind for m in design.modifiers}
    cellwise = np.array([s is None or kinds.get(s.modifier) == "categorical" for s in subs])
    job = _Job(tuple(models), X, X1, design.treatment_columns, st.y, masks, unit, n_units,
               t == 1, family, cellwise)
    # replicates, the full sample and the jackknife samples are columns of the same batches
    # (fixed sets of columns, whatever n_jobs): the last replicates share a batch with the
    # full sample and the jackknife
    g = min(jackknife_groups, n_units)
    columns = list(np.random.SeedSequence(seed).spawn(B)) + [FULL] + [
        _Deleted(k, g, seed) for k in range(g)]
    batches = [columns[i:i + BATCH] for i in range(0, len(columns), BATCH)]
    workers = min(len(batches), os.cpu_count() or 1) if n_jobs is None else n_jobs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        est, codes = _solve(job, batches, workers,
                            f"bootstrap ({B} replicates)" if progress else None)
    df = pd.DataFrame(labels, columns=["modifier", "level", "scale", "model"])
    ratio = df.scale.isin(["RR", "OR", "RateRatio", "MeanRatio"]).to_numpy()
    summary = summarize(est, codes, B, g, notes, [lab[3] for lab in labels], df.scale,
                         conf_level, ratio)
    for c in ("estimate", "boot_se", "conf_low_percentile", "conf_high_percentile",
              "conf_low_bca", "conf_high_bca", "n_degenerate", "note"):
        df[c] = summary[c]
    for rows, what in ((summary["withheld"], "SE and intervals"),
                       (summary["no_bca"] & ~summary["withheld"], "BCa limits")):
        if rows.any():
            which = "; ".join(" ".join(str(x) for x in labels[j] if x)
                              for j in np.flatnonzero(rows))
            warnings.warn(f"bootstrap: {what} withheld for {which}: degenerate replicates (a "
                          "subgroup arm without events, or a ratio from a mean outside its "
                          "range; see the note column).", HTEReportWarning, stacklevel=2)
    df["B"] = B
    df["seed"] = seed
    df["unit"] = cluster or "row"
    return BootstrapResult(df, summary["replicates"] if keep_replicates else None, seed, B)
