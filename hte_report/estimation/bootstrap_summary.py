"""The bootstrap's summary (:func:`hte_report.estimation.bootstrap.bootstrap`): which
replicates are degenerate for a row and why (:data:`REASONS`, in ``fit()``'s words), and each
row's estimate, SE, percentile and BCa limits and note from the replicates that are not, with
the row's SE and intervals withheld when more than :data:`DEGENERATE_MAX` are.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

#: At most this fraction of the replicates may be degenerate for a row (see
#: :mod:`hte_report.estimation.bootstrap`); with more, the row's SE and intervals are withheld.
DEGENERATE_MAX = 0.01
#: A log or logit model's standardized risk this close to 0 (logit: or to 1) has drifted to the
#: boundary (quasi-separation): no finite estimate.
EDGE = 1e-8

#: Why a replicate is degenerate for a row (codes of ``bootstrap._estimates``, 0: it is not); the
#: first that applies is counted. Cell reasons use ``fit()``'s words (``sparse_cells``).
REASONS = {
    1: "an arm without patients",
    2: "zero events in the treated arm",
    3: "zero events in the control arm",
    4: "every treated patient has the event",
    5: "every control patient has the event",
    6: "a predicted mean outside the range of a risk or rate",
    7: "a standardized risk at 0 or 1 (separation)",
    8: "no finite estimate (the refit did not converge)",
}
NO_PATIENTS, OUT_OF_RANGE, AT_EDGE, NOT_FINITE = 1, 6, 7, 8


def cell_codes(job, N: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Degenerate cells (codes 1-5 of :data:`REASONS`, K x R) from the group totals ``N``
    (R x K) and arm counts ``C`` (R x 3K, see ``bootstrap._first_pass``): sums of whole
    numbers, exact in floating point."""
    K = job.masks.shape[0]
    n1 = C[:, :K]
    n0 = N - n1
    code = np.zeros(N.shape, np.int8)
    if job.family != "continuous":
        e1, e0 = C[:, K:2 * K], C[:, 2 * K:]
        if job.family == "binary":
            code[e0 == n0] = 5
            code[e1 == n1] = 4
        code[e0 == 0] = 3
        code[e1 == 0] = 2
    code[(n1 == 0) | (n0 == 0)] = NO_PATIENTS
    code[:, ~job.cellwise] = 0
    return code.T


def effect_codes(job, m, kind: str, cells: np.ndarray, m1: np.ndarray, m0: np.ndarray,
                 effect: np.ndarray) -> np.ndarray:
    """Codes (K x R, :data:`REASONS`) of the replicates degenerate for one model and scale."""
    code = cells.copy()
    if m.family.link == "identity" and kind == "difference":
        code[code != NO_PATIENTS] = 0  # a difference of linear predictions needs no events
    lo, hi = np.fmin(m1, m0), np.fmax(m1, m0)
    if kind != "difference":  # fit()'s _out_of_range: the ratio does not exist
        outside = (lo <= 0) | ((hi >= 1) if kind == "odds-ratio" else False)
        code[(code == 0) & outside] = OUT_OF_RANGE
    if job.family == "binary" and m.family.link != "identity":
        edge = (lo <= EDGE) | ((hi >= 1 - EDGE) if m.family.link == "logit" else False)
        code[(code == 0) & edge] = AT_EDGE
    code[(code == 0) & ~np.isfinite(effect)] = NOT_FINITE
    return code


def _reasons(codes: np.ndarray) -> str:
    """The reasons of degenerate codes with their counts, most frequent first."""
    found, counts = np.unique(codes[codes > 0], return_counts=True)
    order = sorted(zip(-counts, found))
    return ", ".join(f"{REASONS[int(c)]}: {-k}" for k, c in order)


def _full_note(code: int, label: str, scale: str) -> str:
    """Why the full sample's estimate is not estimable (codes beyond the cells, whose notes
    come from ``fit()``'s ``not_estimable``), in ``fit()``'s words."""
    if code == OUT_OF_RANGE:
        what = "risk" if scale == "OR" else "risk or rate"
        return (f"not estimable: {label} predicts a mean outside the range of a {what} here, "
                "so the ratio does not exist")
    if code == AT_EDGE:
        return (f"not estimable: {label}'s standardized risk is at 0 or 1 here (separation: "
                "no finite estimate)")
    return f"not estimable: {REASONS[code]}"


def summarize(est, codes, B, g, notes, models, scales, conf_level, ratio) -> dict:
    """Estimates, SEs, percentile and BCa limits and notes of every row from the columns'
    effects ``est`` and degenerate codes ``codes`` (replicates, the full sample, the
    jackknife samples). Degenerate replicates are left out (NaN); a row with more than
    :data:`DEGENERATE_MAX` of them has no SE or intervals, a degenerate jackknife sample
    leaves it without BCa limits, a degenerate full sample without an estimate."""
    est = np.where(codes > 0, np.nan, est)
    reps, full, jack = est[:B], est[B], est[B + 1:]
    rcodes, fcodes, jcodes = codes[:B], codes[B], codes[B + 1:]
    n_deg = np.count_nonzero(rcodes, axis=0)
    flagged = np.array([bool(x) for x in notes]) | (fcodes > 0)
    withheld = (n_deg > DEGENERATE_MAX * B) & ~flagged
    no_bca = (np.count_nonzero(jcodes, axis=0) > 0) & ~flagged
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # rows whose replicates are all NaN
        lo_p, hi_p = np.nanquantile(reps, [(1 - conf_level) / 2, (1 + conf_level) / 2],
                                    axis=0)
        lo_b, hi_b = bca_limits(full, reps, jack, conf_level)
        spread = np.where(ratio, np.log(reps), reps)  # log scale for ratios, as in fit()
        se = np.nanstd(spread, axis=0, ddof=1)
    # a ratio's limits are positive: degenerate replicates are out, so this is only a guard
    guard = ratio & ~(np.fmin(lo_p, lo_b) > 0) & ~flagged & ~withheld
    guard &= np.isfinite(lo_p)
    out_notes = []
    for j, note in enumerate(notes):
        if not note and fcodes[j]:
            note = _full_note(int(fcodes[j]), models[j], scales[j])
        elif not note and withheld[j]:
            note = (f"SE and intervals not estimable: {n_deg[j]} of {B} replicates degenerate "
                    f"({_reasons(rcodes[:, j])}), more than the {DEGENERATE_MAX:.0%} that may "
                    "be left out")
        elif not note and guard[j]:  # pragma: no cover - degenerate replicates are left out
            note = "SE and intervals not estimable: a ratio limit <= 0"
        elif not note:
            parts = []
            if n_deg[j]:
                parts.append(f"{n_deg[j]} of {B} replicates degenerate "
                             f"({_reasons(rcodes[:, j])}), left out of the SE and intervals")
            if no_bca[j]:
                k = int(np.count_nonzero(jcodes[:, j]))
                parts.append(f"BCa not estimable: {k} of {g} jackknife samples degenerate "
                             f"({_reasons(jcodes[:, j])})")
            note = "; ".join(parts)
        out_notes.append(note)
    withheld |= guard
    lo_b = np.where(no_bca | withheld, np.nan, lo_b)
    hi_b = np.where(no_bca | withheld, np.nan, hi_b)
    gone = withheld | flagged
    nan = np.full(len(notes), np.nan)
    return {"estimate": np.where(flagged, nan, full),
            "boot_se": np.where(gone, nan, se),
            "conf_low_percentile": np.where(gone, nan, lo_p),
            "conf_high_percentile": np.where(gone, nan, hi_p),
            "conf_low_bca": np.where(gone, nan, lo_b),
            "conf_high_bca": np.where(gone, nan, hi_b),
            "n_degenerate": n_deg, "note": out_notes, "replicates": reps,
            "withheld": withheld, "no_bca": no_bca}


def bca_limits(full, reps, jack, conf_level):
    alphas = np.array([(1 - conf_level) / 2, (1 + conf_level) / 2])
    with np.errstate(divide="ignore", invalid="ignore"):
        # degenerate replicates (NaN) are left out of the proportion as of the quantiles
        kept = np.count_nonzero(~np.isnan(reps), axis=0)
        prop = np.clip(np.sum(reps < full, axis=0) / kept, 1e-10, 1 - 1e-10)
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
