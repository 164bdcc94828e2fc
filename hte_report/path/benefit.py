"""Treatment benefit across baseline risk: risk-stratified effects (PATH) and personalized
absolute benefit.

:func:`risk_stratified` groups patients by the predicted risk of a
:class:`~hte_report.path.risk.RiskModel` (quarters, or cut points) and estimates per stratum RD, RR
and OR from :func:`hte_report.fit` on ``y ~ treat * C(risk_stratum)`` (saturated, so the
standardized stratum effects are the crude ones: Wald RD, Katz log RR, Woolf log OR); it tests
the treatment x linear-predictor interaction (``y ~ treat * risk_lp``) on the RD, log-RR and
log-OR scales and draws the conditional RD and RR over baseline risk from the logit model.

Personalized absolute benefit (ARR, NNT) is in :mod:`hte_report.path.personalized`.

Events are taken to be harmful (death, relapse, arrest): benefit is a reduction in risk.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hte_report.errors import ArgumentError, DataError, short
from hte_report.estimation.contrasts import contrast, interval
from hte_report.models.glm import fit_glm
from hte_report.path.risk import RiskModel, quantile_groups
from hte_report.spec.options import OptionError, check_numbers

__all__ = ["RiskResult", "plot_risk_benefit", "risk_stratified"]


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
        A :class:`~hte_report.path.risk.RiskModel` from :func:`~hte_report.path.risk.risk_model`.
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
    >>> from hte_report.path.risk import risk_model
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

    if not isinstance(risk, RiskModel):
        raise ArgumentError(
            f"risk_stratified takes a fitted risk model (a RiskModel), got "
            f"{type(risk).__name__}: fit it first, e.g. rm = hr.risk_model('arrest ~ age + prio', "
            "data, treatment='fin'), then risk_stratified(rm).")
    for name, value in (("groups", groups), ("curve_points", curve_points)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
            raise OptionError(f"{name} must be a whole number >= 2, got {short(value)}.")
    p = risk.patients
    x = p.risk.to_numpy()
    if cutpoints is not None:
        cuts = np.asarray(check_numbers("cutpoints", cutpoints, "cutpoints=[0.2, 0.4]"))
        if len(cuts) == 0 or np.any(~((cuts > 0) & (cuts < 1))) or np.any(np.diff(cuts) <= 0):
            raise OptionError(f"cutpoints must be strictly increasing risks in (0, 1), got "
                             f"{short(cutpoints)}.")
        edges = np.concatenate([[0.0], cuts, [1.0]])
        codes = np.searchsorted(edges, x, side="left") - 1
        grouping = "cutpoints"
        labels = [f"{'[' if i == 0 else '('}{edges[i]:.3g}, {edges[i + 1]:.3g}]"
                  for i in range(len(edges) - 1)]
    else:
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


