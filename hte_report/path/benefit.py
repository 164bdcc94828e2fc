"""Treatment benefit across baseline risk: risk-stratified effects (PATH) and personalized
absolute benefit.

:func:`risk_stratified` groups patients by the predicted risk of a
:class:`~hte_report.risk.RiskModel` (quarters, or cut points) and estimates per stratum RD, RR
and OR from :func:`hte_report.fit` on ``y ~ treat * C(risk_stratum)`` (saturated, so the
standardized stratum effects are the crude ones: Wald RD, Katz log RR, Woolf log OR); it tests
the treatment x linear-predictor interaction (``y ~ treat * risk_lp``) on the RD, log-RR and
log-OR scales and draws the conditional RD and RR over baseline risk from the logit model.

:func:`personalized_benefit`: for a patient with baseline (control) risk ``p0`` and a relative
risk ``RR`` that applies to them, the absolute risk reduction is ``ARR = p0 (1 - RR)`` and the
number needed to treat ``NNT = 1 / ARR``; with harm (``RR > 1``) ``1 / |ARR|`` is the number
needed to harm. ARR limits come from the RR limits with ``p0`` taken as known; when the ARR
interval includes 0 the NNT "interval" is two half-lines through infinity, written as Altman
(BMJ 1998;317:1309) proposes: ``NNTB 10 (NNTH 50 to inf to NNTB 4)``.

Events are taken to be harmful (death, relapse, arrest): benefit is a reduction in risk.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hte_report.errors import DataError
from hte_report.estimation.contrasts import contrast, interval
from hte_report.models.glm import fit_glm
from hte_report.path.risk import RiskModel, quantile_groups
from hte_report.spec.options import OptionError

__all__ = ["RiskResult", "benefit_from_result", "personalized_benefit", "plot_personalized_benefit",
           "plot_risk_benefit", "risk_stratified"]

LP, STRATUM = "risk_lp", "risk_stratum"


@dataclass(frozen=True)
class RiskResult:
    """Treatment effects across strata of predicted baseline risk (PATH).

    Frames
    ------
    strata
        One row per (stratum, scale): ``stratum`` (1..K), ``label``, ``risk_low``/``risk_high``
        (edges of predicted risk), ``mean_risk`` (mean predicted risk), ``n, n_treated,
        n_control, events_treated, events_control``, ``risk_treated``/``risk_control``
        (observed), ``scale`` (``RD``, ``RR``, ``OR``), ``estimate, std_error`` (of the log for
        ratios), ``conf_low, conf_high, statistic, p_value``, ``model``, ``method``, ``note``.
    tests
        ``hypothesis`` (``treatment x risk_lp``: linear-predictor interaction;
        ``equal across strata``), ``test`` (``wald``/``lr``), ``scale``, ``statistic, df,
        p_value``, ``model``, ``method``, ``note``.
    curve
        Conditional RD and RR from ``logit(y) ~ treat * risk_lp`` on a grid of predicted
        baseline ``risk`` (pointwise delta-method intervals).

    ``model``, ``performance`` and ``calibration`` are the risk model's frames.
    """

    risk: RiskModel
    strata: pd.DataFrame
    tests: pd.DataFrame
    curve: pd.DataFrame
    edges: tuple[float, ...]
    grouping: str  # "quantiles" or "cutpoints"
    conf_level: float
    notes: tuple[str, ...] = ()

    @property
    def model(self) -> pd.DataFrame:
        return self.risk.model

    @property
    def performance(self) -> pd.DataFrame:
        return self.risk.performance

    @property
    def calibration(self) -> pd.DataFrame:
        return self.risk.calibration

    def plot(self, axes=None, **kwargs):
        """Absolute and relative effect against baseline risk (matplotlib Figure)."""
        return plot_risk_benefit(self, axes=axes, **kwargs)

    def summary(self) -> str:
        """Plain-text summary: risk model performance, stratum effects and the tests."""
        rm = self.risk
        c = rm.c_statistic()
        lines = [f"Risk-based analysis (PATH): {rm.formula} [{rm.method}"
                 + (", cross-fitted" if rm.crossfit_folds else "") + "]",
                 f"c-statistic {c.estimate:.3f} ({c.conf_low:.3f} to {c.conf_high:.3f}), "
                 f"n = {rm.n_analysed}"]
        lines += [f"note: {x}" for x in (*rm.notes, *self.notes)]
        for scale in ("RD", "RR", "OR"):
            lines.append(f"{scale} by stratum of predicted risk:")
            for r in self.strata[self.strata.scale == scale].itertuples():
                est = (f"{r.estimate:.3g} ({r.conf_low:.3g} to {r.conf_high:.3g})"
                       if np.isfinite(r.estimate) else r.note)
                lines.append(f"  {r.label:<26} {int(r.events_treated)}/{r.n_treated} vs "
                             f"{int(r.events_control)}/{r.n_control}  {est}")
        for r in self.tests.itertuples():
            lines.append(f"{r.hypothesis} ({r.scale}, {r.test}): p = {r.p_value:.3g}")
        return "\n".join(lines)


def risk_stratified(
    risk: RiskModel,
    *,
    cutpoints: Sequence[float] | None = None,
    groups: int = 4,
    curve_points: int = 61,
) -> RiskResult:
    """Effects across strata of predicted risk on both scales, and the risk x treatment tests.

    Parameters
    ----------
    risk
        A :class:`~hte_report.risk.RiskModel` from :func:`~hte_report.risk.risk_model`.
    cutpoints
        Interior cut points on the risk scale, strictly increasing in (0, 1); strata are
        right-closed, e.g. ``[0.2, 0.4]`` gives ``[0, 0.2], (0.2, 0.4], (0.4, 1]``.
    groups
        Number of quantile groups of predicted risk when ``cutpoints`` is not given (quarters).
    curve_points
        Number of grid points of the conditional benefit curve.

    Returns
    -------
    RiskResult

    Examples
    --------
    >>> import warnings
    >>> from hte_report.datasets import load_rossi
    >>> from hte_report.risk import risk_model
    >>> rm = risk_model("arrest ~ age + prio + wexp", load_rossi(), treatment="fin",
    ...                 crossfit_folds=5, seed=1)
    >>> res = risk_stratified(rm)
    >>> res.strata.groupby("scale").size().to_dict()
    {'OR': 4, 'RD': 4, 'RR': 4}

    Notes
    -----
    Stratum effects come from :func:`hte_report.fit` on ``y ~ treat * C(risk_stratum)``:
    ``ols`` and ``modified-poisson`` with HC0 variance (the Wald risk difference and the Katz
    log risk ratio of each stratum's 2 x 2 table) and ``logit`` with model variance (Woolf's log
    odds ratio). The linear-predictor tests come from ``y ~ treat * risk_lp`` with the default
    variances of ``fit`` (OLS HC3, modified Poisson HC0, logit model-based; LR for logit).
    """
    from hte_report.estimation.glm import fit

    p = risk.patients
    x = p.risk.to_numpy()
    if cutpoints is not None:
        cuts = np.asarray(cutpoints, dtype=float)
        if cuts.ndim != 1 or len(cuts) == 0 or np.any((cuts <= 0) | (cuts >= 1)) or np.any(
                np.diff(cuts) <= 0):
            raise OptionError(f"cutpoints must be strictly increasing risks in (0, 1), got "
                             f"{list(cutpoints)}.")
        edges = np.concatenate([[0.0], cuts, [1.0]])
        codes = np.searchsorted(edges, x, side="left") - 1
        grouping = "cutpoints"
        labels = [f"{'[' if i == 0 else '('}{edges[i]:.3g}, {edges[i + 1]:.3g}]"
                  for i in range(len(edges) - 1)]
    else:
        if not isinstance(groups, int) or groups < 2:
            raise OptionError(f"groups must be an integer >= 2, got {groups!r}.")
        codes, edges = quantile_groups(x, groups)
        grouping = "quantiles"
        pre = "Q" if len(edges) == 5 else "G"
        labels = [f"{pre}{i + 1} [{edges[i]:.3g}, {edges[i + 1]:.3g}]"
                  for i in range(len(edges) - 1)]
    _check_strata(codes, p, labels)
    out, trt = risk.outcome, risk.treatment
    frame = pd.DataFrame({out: p.outcome.to_numpy(), trt: p.treatment.to_numpy(),
                          STRATUM: codes + 1, LP: p.lp.to_numpy()})
    strat = f"{out} ~ {trt} * C({STRATUM})"
    kw = dict(treatment=trt, family="binary", multiplicity="none")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*distinct values.*")
        res_rd = fit(strat, frame, models=("ols", "modified-poisson"), variance="HC0", **kw)
        res_or = fit(strat, frame, models=("logit",), **kw)
        res_lp = fit(f"{out} ~ {trt} * {LP}", frame, models=("ols", "modified-poisson", "logit"),
                     **kw)
    strata = _strata_frame(res_rd, res_or, codes, x, labels, edges)
    tests = _tests_frame(res_lp, res_rd, res_or)
    curve = _benefit_curve(frame, out, trt, risk.conf_level, curve_points)
    notes = ["stratum effects are crude (saturated model per stratum): Wald RD, Katz log RR, "
             "Woolf log OR."]
    return RiskResult(risk, strata, tests, curve, tuple(float(e) for e in edges), grouping,
                      risk.conf_level, tuple(notes))


def _check_strata(codes, p: pd.DataFrame, labels) -> None:
    for i, lab in enumerate(labels):
        rows = codes == i
        n1 = int((rows & (p.treatment == 1)).sum())
        n0 = int((rows & (p.treatment == 0)).sum())
        if n1 == 0 or n0 == 0:
            raise DataError(f"risk stratum {lab} has {n1} treated and {n0} control patients: "
                            "its effect is not estimable. Use fewer strata or other cutpoints.")
        if p.outcome[rows].sum() == 0:
            raise DataError(f"risk stratum {lab} has no events in either arm ({n1 + n0} "
                            "patients): its effects are not estimable. Use fewer strata or "
                            "other cutpoints.")


_KEEP = ["n", "n_treated", "n_control", "events_treated", "events_control", "scale", "estimate",
         "std_error", "conf_low", "conf_high", "statistic", "p_value", "model", "method", "note"]


def _strata_frame(res_rd, res_or, codes, x, labels, edges) -> pd.DataFrame:
    sub = res_rd.subgroups
    rows = [sub[(sub.method == "standardized") & (sub.scale == s) & (sub.model == m)]
            for s, m in (("RD", "ols-HC0"), ("RR", "modified-poisson-HC0"))]
    so = res_or.subgroups
    rows.append(so[(so.method == "conditional") & (so.scale == "OR")])
    df = pd.concat(rows, ignore_index=True)
    df["method"] = np.where(df.scale == "OR", "crude-stratum (conditional)", "crude-stratum "
                            "(standardized)")
    df["stratum"] = df.level.astype(int)
    i = df.stratum.to_numpy() - 1
    df["label"] = [labels[j] for j in i]
    df["risk_low"] = edges[i]
    df["risk_high"] = edges[i + 1]
    df["mean_risk"] = [float(x[codes == j].mean()) for j in i]
    df["risk_treated"] = df.events_treated / df.n_treated
    df["risk_control"] = df.events_control / df.n_control
    cols = ["stratum", "label", "risk_low", "risk_high", "mean_risk", "risk_treated",
            "risk_control", *_KEEP]
    order = {"RD": 0, "RR": 1, "OR": 2}
    df = df.assign(_o=df.scale.map(order)).sort_values(["_o", "stratum"])
    return df[cols].reset_index(drop=True)


def _tests_frame(res_lp, res_rd, res_or) -> pd.DataFrame:
    parts = []
    for res, hyp, tests in ((res_lp, f"treatment x {LP}", ("wald", "lr")),
                            (res_rd, "equal across strata", ("wald",)),
                            (res_or, "equal across strata", ("wald", "lr"))):
        t = res.interactions
        t = t[t.test.isin(tests)].copy()
        t.insert(0, "hypothesis", hyp)
        parts.append(t)
    df = pd.concat(parts, ignore_index=True)
    return df[["hypothesis", "test", "scale", "statistic", "df", "p_value", "model", "method",
               "note"]]


def _benefit_curve(frame, out, trt, conf_level, size) -> pd.DataFrame:
    """Conditional RD and RR of the logit ``y ~ treat * risk_lp`` model over the lp range."""
    from hte_report.estimation.setup import setup

    su = setup(f"{out} ~ {trt} * {LP}", frame, treatment=trt, family="binary",
               models=("logit",))
    design = su.design
    fm = fit_glm("logit", design.X, su.y, design.columns, "model")
    lp = frame[LP].to_numpy()
    grid = np.linspace(lp.min(), lp.max(), size)
    prof = pd.DataFrame({out: 0.0, trt: 0, LP: grid})
    X1 = design.materialize(prof.assign(**{trt: 1}))
    X0 = design.materialize(prof)
    rows = []
    for kind, scale in (("difference", "RD"), ("ratio", "RR")):
        c = contrast(fm, X1, X0, np.eye(size), kind)
        res = interval(c, conf_level)
        rows.append(pd.DataFrame({"risk": 1 / (1 + np.exp(-grid)), "lp": grid, "scale": scale,
                                  **{k: res[k] for k in ("estimate", "std_error", "conf_low",
                                                         "conf_high", "statistic", "p_value")},
                                  "mu_treated": c.mu1, "mu_control": c.mu0, "model": fm.label,
                                  "method": "conditional"}))
    return pd.concat(rows, ignore_index=True)


# ----------------------------------------------------------------------------- figure
def plot_risk_benefit(result: RiskResult, axes=None, *, percent: bool = True):
    """Absolute (RD) and relative (RR) effect against predicted baseline risk.

    Points: crude stratum effects with their intervals at the stratum's mean predicted risk
    (from ``result.strata``); line and band: the conditional effect of the logit
    ``y ~ treat * risk_lp`` model (``result.curve``); rug: predicted risks of the patients.
    Nothing is recomputed.

    Parameters
    ----------
    result
        A :class:`RiskResult`.
    axes
        Two matplotlib Axes (absolute, relative); a new figure when omitted.
    percent
        Show risks and risk differences in percent.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.0), constrained_layout=True)
    else:
        fig = axes[0].figure
    k = 100.0 if percent else 1.0
    risk = result.risk
    ctl, trt = risk.treatment_labels
    if {ctl, trt} <= {"0", "1", "False", "True"}:
        ctl, trt = "control", "treated"
    pct = int(round(result.conf_level * 100))
    quarters = result.grouping == "quantiles" and len(result.edges) == 5
    for ax, scale, null in ((axes[0], "RD", 0.0), (axes[1], "RR", 1.0)):
        kk = k if scale == "RD" else 1.0
        cv = result.curve[result.curve.scale == scale]
        st = result.strata[(result.strata.scale == scale) & np.isfinite(result.strata.estimate)]
        ax.fill_between(cv.risk * k, cv.conf_low * kk, cv.conf_high * kk, color="0.88", lw=0,
                        label=f"logistic model with treatment x risk ({pct}% band)")
        ax.plot(cv.risk * k, cv.estimate * kk, color="0.35", lw=1.3)
        ax.errorbar(st.mean_risk * k, st.estimate * kk,
                    yerr=[(st.estimate - st.conf_low) * kk, (st.conf_high - st.estimate) * kk],
                    fmt="o", color="C0", ms=6, capsize=3, zorder=3,
                    label=f"risk {'quarter' if quarters else 'stratum'} (crude, {pct}% CI)")
        ax.axhline(null * kk, color="black", lw=0.8, ls="--")
        if scale == "RR":
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        ax.plot(risk.patients.risk * k, np.zeros(risk.n_analysed), "|", color="0.45",
                ms=7, alpha=0.35, transform=ax.get_xaxis_transform())
        ax.set_xlabel("Predicted baseline risk" + (" (%)" if percent else ""))
        ax.set_ylabel(f"Risk difference{', % points' if percent else ''}\n({trt} − {ctl})"
                      if scale == "RD" else f"Risk ratio\n({trt} / {ctl})")
        ax.set_title("Absolute scale" if scale == "RD" else "Relative scale", fontsize=10,
                     loc="left")
    axes[0].legend(fontsize=8, frameon=False, loc="upper left")
    return fig


# ----------------------------------------------------------------------------- personalized
_BENEFIT_COLUMNS = ["p0", "rr", "rr_low", "rr_high", "arr", "arr_low", "arr_high", "nnt",
                    "nnt_type", "nntb_low", "nntb_high", "nnth_low", "nnth_high", "nnt_text"]


def _as_array(name: str, value: object) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise OptionError(f"{name} must be a number or an array of numbers, got "
                         f"{type(value).__name__} {value!r}.") from None
    return arr


def _check_p0(p0: np.ndarray) -> None:
    bad = ~((p0 > 0) & (p0 < 1))
    if bad.any():
        raise OptionError(f"p0 (baseline risk) must be strictly between 0 and 1; got "
                         f"{p0[bad].ravel()[:5].tolist()}. Give risks as proportions "
                         "(5% -> 0.05).")


def _check_rr(name: str, rr: np.ndarray) -> None:
    bad = ~(np.isfinite(rr) & (rr > 0))
    if bad.any():
        raise OptionError(f"{name} must be a finite risk ratio > 0; got "
                         f"{rr[bad].ravel()[:5].tolist()}.")


def personalized_benefit(p0: object, rr: object, rr_ci: Sequence[object] | None = None
                         ) -> pd.DataFrame:
    """Absolute risk reduction and NNT (NNTB / NNTH) for baseline risks ``p0``.

    Parameters
    ----------
    p0
        Baseline (untreated) risk(s) as proportions in (0, 1): a number or an array.
    rr
        Risk ratio(s), treated vs control, > 0; broadcast against ``p0``.
    rr_ci
        ``(low, high)`` confidence limits of ``rr`` (each broadcast like ``rr``); without it
        the interval columns are NaN.

    Returns
    -------
    pandas.DataFrame
        One row per broadcast element: ``p0, rr, rr_low, rr_high``; ``arr`` = p0 (1 - RR) and
        its limits ``arr_low`` = p0 (1 - RR_high), ``arr_high`` = p0 (1 - RR_low) (p0 taken as
        known); ``nnt`` = 1 / |ARR| with ``nnt_type`` ``NNTB`` (ARR > 0), ``NNTH`` (ARR < 0) or
        ``none`` (ARR = 0, infinite); the NNT interval as ``nntb_low, nntb_high`` and
        ``nnth_low, nnth_high`` (NaN when that side is not in the interval, ``inf`` when it is
        unbounded); ``nnt_text``: the Altman (1998) display with NNTs rounded up.

    Examples
    --------
    >>> b = personalized_benefit(0.05, 0.90)
    >>> round(float(b.arr[0]) * 100, 6), b.nnt_text[0]
    (0.5, 'NNTB 200')
    >>> personalized_benefit(0.05, 0.90, rr_ci=(0.80, 1.01)).nnt_text[0]
    'NNTB 200 (NNTH 2000 to ∞ to NNTB 100)'
    """
    p = _as_array("p0", p0)
    r = _as_array("rr", rr)
    _check_p0(p)
    _check_rr("rr", r)
    if rr_ci is not None:
        if not isinstance(rr_ci, (tuple, list)) or len(rr_ci) != 2:
            raise OptionError(f"rr_ci must be a pair (low, high), got {rr_ci!r}.")
        lo, hi = _as_array("rr_ci[0]", rr_ci[0]), _as_array("rr_ci[1]", rr_ci[1])
        _check_rr("rr_ci[0]", lo)
        _check_rr("rr_ci[1]", hi)
        p, r, lo, hi = np.broadcast_arrays(p, r, lo, hi)
        bad = ~((lo <= r) & (r <= hi))
        if bad.any():
            raise OptionError(f"rr_ci must satisfy low <= rr <= high; got rr {r[bad][:3].tolist()}"
                             f" with low {lo[bad][:3].tolist()}, high {hi[bad][:3].tolist()}.")
    else:
        p, r = np.broadcast_arrays(p, r)
        lo = hi = np.full(p.shape, np.nan)
    p, r, lo, hi = (np.atleast_1d(a).ravel().astype(float) for a in (p, r, lo, hi))
    arr = p * (1 - r)
    arr_lo, arr_hi = p * (1 - hi), p * (1 - lo)
    rows = []
    for i in range(len(p)):
        rows.append(_nnt(arr[i], arr_lo[i], arr_hi[i]))
    df = pd.DataFrame({"p0": p, "rr": r, "rr_low": lo, "rr_high": hi, "arr": arr,
                       "arr_low": arr_lo, "arr_high": arr_hi})
    df = pd.concat([df, pd.DataFrame(rows, index=df.index)], axis=1)
    return df[_BENEFIT_COLUMNS]


def _ceil(x: float) -> str:
    """NNTs are rounded up to whole patients (after removing float noise: 199.99999 -> 200)."""
    if not np.isfinite(x):
        return "∞"
    return str(int(math.ceil(round(x, 8))))


def _nnt(arr: float, lo: float, hi: float) -> dict:
    if arr > 0:
        kind, nnt = "NNTB", 1 / arr
    elif arr < 0:
        kind, nnt = "NNTH", -1 / arr
    else:
        kind, nnt = "none", np.inf
    out = {"nnt": nnt, "nnt_type": kind, "nntb_low": np.nan, "nntb_high": np.nan,
           "nnth_low": np.nan, "nnth_high": np.nan}
    text = f"{kind} {_ceil(nnt)}" if kind != "none" else "NNT ∞ (no difference)"
    if np.isfinite(lo) and np.isfinite(hi):
        if lo > 0:  # benefit throughout
            out.update(nntb_low=1 / hi, nntb_high=1 / lo)
            ci = f"NNTB {_ceil(1 / hi)} to {_ceil(1 / lo)}"
        elif hi < 0:  # harm throughout
            out.update(nnth_low=-1 / lo, nnth_high=-1 / hi)
            ci = f"NNTH {_ceil(-1 / lo)} to {_ceil(-1 / hi)}"
        else:  # the ARR interval includes 0: NNTH x to inf to NNTB y
            parts = []
            if lo < 0:
                out.update(nnth_low=-1 / lo, nnth_high=np.inf)
                parts.append(f"NNTH {_ceil(-1 / lo)}")
            if hi > 0:
                out.update(nntb_low=1 / hi, nntb_high=np.inf)
                parts.append(f"NNTB {_ceil(1 / hi)}")
            ci = " to ∞ to ".join(parts) if len(parts) == 2 else (
                f"{parts[0]} to ∞" if parts else "∞")
        text = f"{text} ({ci})"
    out["nnt_text"] = text
    return out


def benefit_from_result(result, p0: object, *, modifier: str | None = None,
                        level: str | None = None, model: str | None = None) -> pd.DataFrame:
    """Personalized benefit from the risk ratio of a fitted :class:`~hte_report.HTEResult`.

    Parameters
    ----------
    result
        A result whose models include a log-link model (``modified-poisson`` or
        ``log-binomial``) for a binary outcome.
    p0
        Baseline risk(s) in (0, 1).
    modifier, level
        Use the standardized RR of this subgroup (all levels of ``modifier`` when ``level`` is
        omitted); the overall RR when ``modifier`` is omitted.
    model
        The model label (e.g. ``"modified-poisson-HC0"``); default: the primary relative model.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`personalized_benefit` with ``modifier``, ``level`` and ``model``
        in front, one row per (subgroup, p0).

    Examples
    --------
    >>> import hte_report as hr
    >>> from hte_report.datasets import load_rossi
    >>> res = hr.fit("arrest ~ fin * C(wexp)", load_rossi(), treatment="fin")
    >>> b = benefit_from_result(res, [0.1, 0.3], modifier="wexp", level="1")
    >>> b[["level", "p0", "nnt_type"]].values.tolist()
    [['1', 0.1, 'NNTB'], ['1', 0.3, 'NNTB']]
    """
    if getattr(result, "family", None) != "binary":
        raise OptionError("benefit_from_result needs a result for a binary outcome (risk ratio); "
                         f"got family={getattr(result, 'family', None)!r}.")
    if model is None:
        scale, model = result.primary.get("relative", (None, None))
        if scale != "RR":
            raise OptionError("the result has no risk-ratio model; fit with "
                             "models=('modified-poisson', ...) or 'log-binomial'.")
    if modifier is None:
        rows = result.overall[(result.overall.scale == "RR") & (result.overall.model == model)]
        rows = rows.assign(modifier="All patients", level="")
    else:
        sub = result.subgroups
        rows = sub[(sub.scale == "RR") & (sub.model == model) & (sub.method == "standardized")
                   & (sub.modifier == modifier)]
        if level is not None:
            rows = rows[rows.level == str(level)]
    if rows.empty:
        have = sorted(result.subgroups[result.subgroups.scale == "RR"].model.unique())
        raise OptionError(f"no risk ratio for model={model!r}, modifier={modifier!r}, "
                         f"level={level!r}; RR models in the result: {have}; modifiers: "
                         f"{list(result.modifiers)}.")
    out = []
    for r in rows.itertuples():
        if not np.isfinite(r.estimate):
            raise DataError(f"the RR of {r.modifier} {r.level} is not estimable ({r.note}).")
        b = personalized_benefit(p0, r.estimate, (r.conf_low, r.conf_high))
        b.insert(0, "model", model)
        b.insert(0, "level", r.level)
        b.insert(0, "modifier", r.modifier)
        out.append(b)
    return pd.concat(out, ignore_index=True)


def plot_personalized_benefit(benefit: pd.DataFrame, ax=None, *, percent: bool = True):
    """ARR against baseline risk from a :func:`personalized_benefit` frame (one RR).

    Draws the ARR line with its interval band over the frame's ``p0`` values and marks the
    NNT on a secondary axis-free annotation at the ends. Returns the Axes.

    Examples
    --------
    >>> import numpy as np
    >>> b = personalized_benefit(np.linspace(0.01, 0.5, 50), 0.8, (0.7, 0.95))
    >>> ax = plot_personalized_benefit(b)
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.6), constrained_layout=True)
    k = 100.0 if percent else 1.0
    b = benefit.sort_values("p0")
    if np.isfinite(b.arr_low).all():
        ax.fill_between(b.p0 * k, b.arr_low * k, b.arr_high * k, color="C0", alpha=0.2, lw=0,
                        label="interval from the RR interval")
    ax.plot(b.p0 * k, b.arr * k, color="C0", lw=1.6, label="ARR = p0 (1 − RR)")
    ax.axhline(0, color="black", lw=0.8, ls="--")
    for (_, r), side in zip(b.iloc[[0, -1]].iterrows(), ("left", "right")):
        ax.annotate(r.nnt_text.split(" (")[0], (r.p0 * k, r.arr * k), fontsize=8, ha=side,
                    textcoords="offset points", xytext=(4 if side == "left" else -4, 8))
    ax.set_xlabel("Baseline risk p0" + (" (%)" if percent else ""))
    ax.set_ylabel("Absolute risk reduction" + (", % points" if percent else ""))
    ax.legend(fontsize=8, frameon=False)
    return ax
