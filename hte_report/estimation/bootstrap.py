"""Nonparametric (and cluster) bootstrap of standardized effects, by frequency weights.

Each replicate draws multinomial frequency weights over rows (or over clusters, expanded to their
rows), refits every working model on the weighted data, and recomputes the standardized
subgroup and overall effects from the same counterfactual designs. Replicates are solved in
batches: one pass over the data advances the chord iterations (score equations of every
replicate, full-sample information as the fixed matrix) of all replicates in the batch, and
another gives their subgroup means. Every replicate is solved to the same tolerance as an
ordinary fit (tests compare with statsmodels on explicitly resampled rows); only the effect
estimates are kept, so memory is flat in the number of replicates. Every replicate has its own
child seed (``SeedSequence``) and batches are fixed sets of replicates, so results do not depend
on how batches are spread across processes.

Intervals: percentile, and BCa (Efron 1987) with the acceleration from a grouped jackknife
(``jackknife_groups`` random groups of rows or clusters; a delete-one jackknife is infeasible at
large n and converges to the same value as the groups grow).
"""

from __future__ import annotations

import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg, stats

from hte_report.design.build import subgroups
from hte_report.errors import HTEReportWarning
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
from hte_report.models.fast import BLOCK, Family, block_pass, irls, one_blas_thread
from hte_report.spec.options import MODELS, OptionError, check_integer


@dataclass(frozen=True)
class BootstrapResult:
    """Bootstrap intervals (tidy frame) and, when kept, the replicate estimates (B x K)."""

    intervals: pd.DataFrame
    replicates: np.ndarray | None
    seed: int
    B: int


#: Replicates solved together in one pass over the data (their weights take
#: n x BATCH x 2 bytes); batches are fixed sets of replicate indices, so results do not
#: depend on how batches are spread over processes.
BATCH = 32
#: A replicate has converged when its coefficients move by less than this (relative).
TOL = 1e-10
MAXITER = 30


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


def _model(fm, X, y, exposure, kinds) -> _Model:
    info = MODELS[fm.name]
    fam = Family(info.family, info.link)
    Xf = X * exposure[:, None] if (exposure is not None and fam.link == "identity") else X
    off = np.log(exposure) if (exposure is not None and fam.link == "log") else None
    with one_blas_thread(), np.errstate(all="ignore"):
        information = block_pass(Xf, y, fam, fm.params, off=off).info
    return _Model(fm.name, fam, fm.params, linalg.cho_factor(information), tuple(kinds), Xf,
                  off)


@dataclass(frozen=True)
class _Job:
    models: tuple[_Model, ...]
    X1: np.ndarray  # every row with treatment = 1
    treatment_columns: np.ndarray  # zeroed for predictions under treatment = 0
    y: np.ndarray
    masks: np.ndarray  # n x K boolean: the whole sample and every subgroup
    unit: np.ndarray  # resampling unit per row (row index or cluster code)
    n_units: int


def replicate_weights(seed, n_units: int, unit: np.ndarray) -> np.ndarray:
    """Frequency weight of every row in the replicate drawn from ``seed``: multinomial counts
    of ``n_units`` draws with replacement (drawn as indices, then counted), expanded to rows."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(rng.integers(0, n_units, n_units), minlength=n_units)
    return counts[unit].astype(float)


def _weights(job: _Job, seeds: list) -> np.ndarray:
    C = np.empty((len(job.y), len(seeds)), np.uint16)
    for j, s in enumerate(seeds):
        w = replicate_weights(s, job.n_units, job.unit)
        if w.max() > np.iinfo(np.uint16).max:  # pragma: no cover - astronomically unlikely
            return np.column_stack([replicate_weights(s, job.n_units, job.unit)
                                    for s in seeds])
        C[:, j] = w
    return C


def _chord(job: _Job, m: _Model, C: np.ndarray) -> np.ndarray:
    """Coefficients (p x R) of the R weighted refits of model ``m`` (weights: columns of C).

    Every replicate solves its own score equations ``X' diag(c) (y - mu) d/v = 0`` exactly (to
    :data:`TOL`); the iterations use the full-sample information as a fixed matrix (chord
    method), so one pass over the data serves all R replicates with two thin matrix products
    instead of a p x p information per replicate. The contraction rate is of order
    1/sqrt(n); a replicate that does not converge is refitted by ordinary Fisher scoring."""
    fam, X, y, off = m.family, m.X, job.y, m.offset
    R = C.shape[1]
    Bm = np.repeat(m.params[:, None], R, axis=1)
    scale = len(y) / C.sum(axis=0, dtype=float)  # information scales with the total weight
    active = np.arange(R)
    prev = np.full(R, np.inf)
    for _ in range(MAXITER):
        cols = slice(None) if len(active) == R else active  # a slice avoids copies
        G = np.zeros((X.shape[1], len(active)))
        B_act = Bm[:, cols]
        for s in range(0, len(y), BLOCK):
            Xb = X[s:s + BLOCK]
            eta = Xb @ B_act
            if off is not None:
                eta += off[s:s + BLOCK, None]
            mu, d = fam.mean(eta)
            u = C[s:s + BLOCK, cols] * (y[s:s + BLOCK, None] - mu)
            if not fam.canonical:
                u *= d / fam.variance(mu)
            G += Xb.T @ u
        step = linalg.cho_solve(m.chol, G) * scale[active]
        Bm[:, active] += step
        size = np.max(np.abs(step), axis=0) / (1 + np.max(np.abs(Bm[:, active]), axis=0))
        bad = ~np.isfinite(size) | (size > prev[active])  # diverging: leave to Fisher scoring
        prev[active] = size
        keep = ~((size <= TOL) | bad)
        if bad.any():
            prev[active[bad]] = np.inf
        active = active[keep]
        if not len(active):
            break
    for r in np.flatnonzero(~(prev <= TOL)):
        Bm[:, r] = _refit(job, m, C[:, r].astype(float))
    return Bm


def _refit(job: _Job, m: _Model, w: np.ndarray) -> np.ndarray:
    try:
        with np.errstate(all="ignore"):
            b, _eta, converged, _it = irls(m.X, job.y, m.family.family, m.family.link,
                                           weights=w, offset=m.offset, start=m.params)
    except (np.linalg.LinAlgError, ValueError):
        converged = False
    return b if converged else np.full(len(m.params), np.nan)


def _means(job: _Job, m: _Model, Bm: np.ndarray, C: np.ndarray):
    """Weighted mean predictions under treatment 1 and 0 in every group (K x R each)."""
    K, R = job.masks.shape[1], C.shape[1]
    B0 = Bm.copy()
    B0[job.treatment_columns] = 0.0  # X1 @ B0 = X0 @ Bm, without forming X0
    both = np.hstack([Bm, B0])
    N, S = np.zeros((K, R)), np.zeros((K, 2 * R))
    for s in range(0, len(job.y), BLOCK):
        Mb = job.masks[s:s + BLOCK].astype(float)
        Cb = C[s:s + BLOCK].astype(float)
        N += Mb.T @ Cb
        S += Mb.T @ (np.tile(Cb, 2) * m.family.mean(job.X1[s:s + BLOCK] @ both)[0])
    return S[:, :R] / N, S[:, R:] / N


def _effect(kind: str, m1: np.ndarray, m0: np.ndarray) -> np.ndarray:
    if kind == "difference":
        return m1 - m0
    if kind == "ratio":
        return m1 / m0
    return (m1 / (1 - m1)) / (m0 / (1 - m0))


def _estimates(job: _Job, C: np.ndarray) -> np.ndarray:
    """All standardized effects (R x n_effects) for the frequency weights in the columns of C."""
    out = []
    with one_blas_thread(), np.errstate(all="ignore"):
        for m in job.models:
            Bm = _chord(job, m, C)
            m1, m0 = _means(job, m, Bm, C)
            out += [_effect(kind, m1, m0) for kind, _scale in m.kinds]
    return np.vstack(out).T


_JOB: _Job | None = None


def _init(job: _Job) -> None:
    global _JOB
    _JOB = job


def _run(seeds: list) -> np.ndarray:
    return _estimates(_JOB, _weights(_JOB, seeds))


def bootstrap(
    formula: str,
    data: object,
    *,
    B: int = 200,
    seed: int = 20260101,
    cluster: str | None = None,
    conf_level: float = 0.95,
    jackknife_groups: int = 20,
    n_jobs: int = 1,
    progress: bool = False,
    keep_replicates: bool = False,
    **fit_kwargs,
) -> BootstrapResult:
    """Bootstrap intervals for every standardized subgroup and overall effect.

    Parameters
    ----------
    formula, data, fit_kwargs
        As for :func:`hte_report.fit` (``treatment``, ``family``, ``models``, ``exposure``...).
    B
        Number of replicates.
    seed
        Seed of the ``SeedSequence`` that gives every replicate its own stream (recorded).
    cluster
        Resample whole clusters (e.g. centres) instead of rows.
    n_jobs
        Processes to use; results are identical for any value.

    Returns
    -------
    BootstrapResult whose ``intervals`` frame has ``modifier, level, scale, model, estimate,
    boot_se`` (for ratio scales the SE of the log ratio, as ``std_error`` in ``fit``),
    ``conf_low_percentile, conf_high_percentile, conf_low_bca, conf_high_bca, note, B, seed``
    (``note``: "not estimable: ..." where a subgroup has no events in an arm, with the numbers
    left out, as in ``fit``) and, with ``keep_replicates``, the B x K replicate estimates
    (columns in frame order).
    """
    unknown = set(fit_kwargs) - {"treatment", "reference", "family", "models", "exposure",
                                 "safe_formula", "variance"}
    if unknown:
        raise TypeError(f"bootstrap() got unexpected keyword arguments {sorted(unknown)}")
    B = check_integer("B", B)
    seed = check_integer("seed", seed)
    if B < 20:
        raise OptionError(f"B={B} is too few replicates for intervals: use at least 20 (200 or "
                         "more for percentile intervals, 1000 or more for BCa).")
    fit_kwargs.pop("variance", None)
    from hte_report.data.largedata import CellData

    if isinstance(data, CellData):
        raise OptionError("bootstrap() resamples patients and needs one row per patient; "
                         "pre-aggregated cells (read_cells) cannot be resampled. Use the "
                         "sandwich intervals of fit(), or pass the row-level data.")
    st = setup(formula, data, extra_columns=(cluster,), **fit_kwargs)
    design, family = st.design, st.family
    frame = st.prep.frame
    subs = [None] + subgroups(design, st.parsed.treatment)
    n = len(st.y)
    masks = np.column_stack([np.ones(n, bool) if s is None else s.rows for s in subs])
    if cluster is not None:
        unit = np.unique(frame[cluster].to_numpy(), return_inverse=True)[1]
    else:
        unit = np.arange(n)
    n_units = int(unit.max()) + 1
    models, labels = [], []
    # the full-sample fits, with the same fallbacks (and warnings) as fit()
    fitted, _rows, _notes = fit_models(st.model_names, design, st.y, None, st.expo, None,
                                        path="auto")
    # cells without events make ratio scales (and log/logit models) not estimable, as in fit()
    t = frame[st.parsed.treatment].to_numpy()
    groups = RowGroups.of([np.ones(n, dtype=bool)] + [s.rows for s in subs[1:]])
    sparse = sparse_cells(subs[1:], arm_counts(subs[1:], groups, t, st.y, st.expo, family), family)
    notes = []
    for fm in fitted:
        models.append(_model(fm, design.X, st.y, st.expo, scales_of(fm, family)))
        for kind, scale in models[-1].kinds:
            for s in subs:
                labels.append((OVERALL if s is None else s.modifier,
                               "" if s is None else s.level, scale, fm.label))
                key = None if s is None else (s.modifier, s.level)
                notes.append(not_estimable(fm, key, sparse, kind))
    job = _Job(tuple(models), design.X1, design.treatment_columns, st.y, masks, unit,
               n_units)
    full = _estimates(job, np.ones((n, 1), np.uint16))[0]
    children = np.random.SeedSequence(seed).spawn(B)
    batches = [children[i:i + BATCH] for i in range(0, B, BATCH)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if n_jobs > 1:
            with ProcessPoolExecutor(n_jobs, initializer=_init, initargs=(job,)) as ex:
                reps = np.vstack(list(ex.map(_run, batches)))
        else:
            _init(job)
            it = batches
            if progress:
                from rich.progress import track

                it = track(it, description=f"bootstrap ({B} replicates)", transient=True)
            reps = np.vstack([_run(batch) for batch in it])
        jack = _grouped_jackknife(job, jackknife_groups, seed)
    flagged = np.array([bool(x) for x in notes])
    bad = ~np.isfinite(reps).all(axis=0) & ~flagged
    if bad.any():
        which = "; ".join(" ".join(str(x) for x in labels[j] if x) for j in np.flatnonzero(bad))
        warnings.warn(f"not finite in some replicates, intervals not reported: {which} "
                      "(a sparse subgroup, or a ratio from a linear model).", HTEReportWarning,
                      stacklevel=2)
    lo_p, hi_p = np.nanquantile(reps, [(1 - conf_level) / 2, (1 + conf_level) / 2], axis=0)
    lo_b, hi_b = _bca(full, reps, jack, conf_level)
    df = pd.DataFrame(labels, columns=["modifier", "level", "scale", "model"])
    df["estimate"] = full
    ratio = df.scale.isin(["RR", "OR", "RateRatio", "MeanRatio"]).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.where(ratio, np.log(reps), reps)  # log scale for ratios, as in fit()
    df["boot_se"] = np.nanstd(spread, axis=0, ddof=1)
    df["conf_low_percentile"], df["conf_high_percentile"] = lo_p, hi_p
    df["conf_low_bca"], df["conf_high_bca"] = lo_b, hi_b
    df.loc[bad, ["conf_low_percentile", "conf_high_percentile", "conf_low_bca",
                 "conf_high_bca"]] = np.nan
    df.loc[flagged, ["estimate", "boot_se", "conf_low_percentile", "conf_high_percentile",
                     "conf_low_bca", "conf_high_bca"]] = np.nan
    df["note"] = notes
    df["B"] = B
    df["seed"] = seed
    df["unit"] = cluster or "row"
    return BootstrapResult(df, reps if keep_replicates else None, seed, B)


def _grouped_jackknife(job: _Job, groups: int, seed: int) -> np.ndarray:
    g = min(groups, job.n_units)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    member = rng.permutation(job.n_units) % g
    C = (member[job.unit][:, None] != np.arange(g)[None, :]).astype(np.uint16)
    return _estimates(job, C)


def _bca(full, reps, jack, conf_level):
    alphas = np.array([(1 - conf_level) / 2, (1 + conf_level) / 2])
    with np.errstate(divide="ignore", invalid="ignore"):
        prop = np.clip(np.mean(reps < full, axis=0), 1e-10, 1 - 1e-10)
        z0 = stats.norm.ppf(prop)
        d = jack.mean(axis=0) - jack
        a = np.sum(d**3, axis=0) / (6 * np.sum(d**2, axis=0) ** 1.5)
        za = stats.norm.ppf(alphas)[:, None]
        adj = stats.norm.cdf(z0 + (z0 + za) / (1 - a * (z0 + za)))
    lo = np.array([np.nanquantile(reps[:, j], adj[0, j]) if np.isfinite(adj[0, j]) else np.nan
                   for j in range(reps.shape[1])])
    hi = np.array([np.nanquantile(reps[:, j], adj[1, j]) if np.isfinite(adj[1, j]) else np.nan
                   for j in range(reps.shape[1])])
    return lo, hi
