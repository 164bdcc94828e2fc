"""Nonparametric (and cluster) bootstrap of standardized effects, by frequency weights.

Each replicate draws multinomial frequency weights over rows (or over clusters, expanded to their
rows), refits every working model on the weighted data with the blocked IRLS path warm-started
at the full-sample estimates, and recomputes the standardized subgroup and overall effects from
the same counterfactual designs. Only the effect estimates are kept per replicate, so memory is
flat in the number of replicates. Every replicate has its own child seed (``SeedSequence``), so
results do not depend on how replicates are split across processes.

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
from scipy import stats

from .design import subgroups
from .effects import contrast
from .errors import HTEReportWarning
from .fitting import OVERALL, _scales, _start, setup
from .models.fast import fit_irls_weighted
from .models.glm import FittedModel, fit_glm
from .options import MODELS, default_variance


@dataclass(frozen=True)
class BootstrapResult:
    """Bootstrap intervals (tidy frame) and, when kept, the replicate estimates (B x K)."""

    intervals: pd.DataFrame
    replicates: np.ndarray | None
    seed: int
    B: int


@dataclass(frozen=True)
class _Job:
    names: tuple
    links: dict
    X: np.ndarray
    X1: np.ndarray
    X0: np.ndarray
    y: np.ndarray
    expo: np.ndarray | None
    masks: np.ndarray  # n x K boolean
    unit: np.ndarray  # resampling unit per row (row index or cluster code)
    n_units: int
    starts: dict
    kinds: dict  # model -> list of (kind, scale)
    family: str


def _estimates(job: _Job, w: np.ndarray) -> np.ndarray:
    """All standardized effects for frequency weights ``w`` over rows (one replicate)."""
    out = []
    W = job.masks * w[:, None]
    W = W / W.sum(axis=0)
    for name in job.names:
        b = fit_irls_weighted(name, job.X, job.y, w, job.expo, job.starts[name])
        fm = FittedModel(name, job.links[name], "", b, np.zeros((len(b), len(b))), 0.0, True,
                         len(job.y), ())
        for kind, _scale in job.kinds[name]:
            out.append(contrast(fm, job.X1, job.X0, W, kind).estimate)
    return np.concatenate(out)


def replicate_weights(seed, n_units: int, unit: np.ndarray) -> np.ndarray:
    """Frequency weight of every row in the replicate drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_units, np.full(n_units, 1.0 / n_units))
    return counts[unit].astype(float)


def _run(job: _Job, seeds: list) -> np.ndarray:
    return np.vstack([_estimates(job, replicate_weights(s, job.n_units, job.unit))
                      for s in seeds])


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
    ``conf_low_percentile, conf_high_percentile, conf_low_bca, conf_high_bca, B, seed``
    and, with ``keep_replicates``, the B x K replicate estimates (columns in frame order).
    """
    unknown = set(fit_kwargs) - {"treatment", "reference", "family", "models", "exposure",
                                 "safe_formula", "variance"}
    if unknown:
        raise TypeError(f"bootstrap() got unexpected keyword arguments {sorted(unknown)}")
    if B < 20:
        raise ValueError(f"B={B} is too few replicates for intervals: use at least 20 (200 or "
                         "more for percentile intervals, 1000 or more for BCa).")
    fit_kwargs.pop("variance", None)
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
    starts, links, kinds, labels = {}, {}, {}, []
    for name in st.model_names:
        fm = fit_glm(name, design.X, st.y, design.columns, default_variance(name), st.expo,
                     None, _start(name, design.X, st.y, st.expo))
        starts[name] = fm.params
        links[name] = MODELS[name].link
        kinds[name] = _scales(fm, family)
        for _kind, scale in kinds[name]:
            for s in subs:
                labels.append((OVERALL if s is None else s.modifier,
                               "" if s is None else s.level, scale, fm.label))
    job = _Job(tuple(st.model_names), links, design.X, design.X1, design.X0, st.y, st.expo,
               masks, unit, n_units, starts, kinds, family)
    full = _estimates(job, np.ones(n))
    children = np.random.SeedSequence(seed).spawn(B)
    chunks = [children[i::max(1, n_jobs)] for i in range(max(1, n_jobs))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if n_jobs > 1:
            with ProcessPoolExecutor(n_jobs) as ex:
                parts = list(ex.map(_run, [job] * len(chunks), chunks))
            reps = np.empty((B, len(full)))
            for j, part in enumerate(parts):
                reps[j::n_jobs] = part
        else:
            reps = np.empty((B, len(full)))
            it = range(B)
            if progress:
                from rich.progress import track

                it = track(it, description="bootstrap", transient=True)
            for b in it:
                reps[b] = _run(job, [children[b]])[0]
        jack = _grouped_jackknife(job, jackknife_groups, seed)
    bad = ~np.isfinite(reps).all(axis=0)
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
    df["B"] = B
    df["seed"] = seed
    df["unit"] = cluster or "row"
    return BootstrapResult(df, reps if keep_replicates else None, seed, B)


def _grouped_jackknife(job: _Job, groups: int, seed: int) -> np.ndarray:
    g = min(groups, job.n_units)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    member = rng.permutation(job.n_units) % g
    out = []
    for k in range(g):
        w = (member[job.unit] != k).astype(float)
        out.append(_estimates(job, w))
    return np.vstack(out)


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
