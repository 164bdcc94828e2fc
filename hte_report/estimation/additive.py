"""Interaction on the additive scale for binary modifiers, from ratio-scale models: RERI, AP
and SI (Hosmer & Lemeshow 1992; Knol & VanderWeele 2012), and beside them the joint-exposure
ratios they are made of (RR10, RR01, RR11 against the doubly unexposed stratum) and the
multiplicative interaction RR11 / (RR10 RR01) = exp(b3), each with a delta-method interval, as
``epiR::epi.interaction(param = "product")`` reports them.

The contrasts are linear-predictor differences between profile rows with (treatment,
modifier) = (1, 0), (0, 1), (1, 1) and the reference (0, 0), other covariates at the reference
profile. Labels say which ratio the model estimates: ``_OR`` from a logit model, ``_RR`` from a
log link. The reference stratum is treatment = 0 at the modifier's first level, or with
``reference="lowest-risk"`` the stratum with the lowest predicted risk (preventive exposures
recoded, Knol et al. 2011); the ``reference`` column states the stratum.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from hte_report.design.build import Design
from hte_report.estimation.profiles import profile_frame
from hte_report.models.glm import FittedModel

#: Columns of ``HTEResult.additive`` and ``HTEResult.joint_effects``.
COLUMNS = ["modifier", "measure", "estimate", "std_error", "conf_low", "conf_high", "model",
           "reference", "note"]

SI_NOTE = ("not estimable: SI = (R11 - 1) / ((R10 - 1) + (R01 - 1)) is negative or undefined "
           "here (the individual effects are preventive or cancel); read RERI and AP, or recode "
           "the exposures so that the reference is the lowest-risk stratum (Knol et al. 2011)")


def reri_designs(design: Design, treatment: str, profile: dict) -> dict:
    """For each binary categorical modifier: its reference level and the rows ``L`` that turn
    coefficients into the joint-exposure contrasts of :func:`reri` (built once, in one
    materialization, and shared by every model)."""
    mods = [m for m in design.modifiers
            if m.kind == "categorical" and len(design.levels[m.name].values) == 2]
    frames = []
    for m in mods:
        lo, hi = design.levels[m.name].values
        frames.append(profile_frame(design, [{**profile, treatment: t, m.name: lv}
                                              for t, lv in ((0, lo), (1, lo), (0, hi), (1, hi))]))
    out = {}
    for m, X in zip(mods, design.materialize_many(frames)):
        out[m.name] = (tuple(design.levels[m.name].values), np.asarray(X))
    return out


def _contrast_rows(X: np.ndarray, t_ref: int, m_ref: int) -> np.ndarray:
    """Rows L of (b_A, b_B, b_AB) with the stratum (treatment, modifier) = (t_ref, m_ref) as
    the reference: exposure A is the other treatment arm, B the modifier's other level. ``X``
    holds the profile rows of (t, m) = (0, 0), (1, 0), (0, 1), (1, 1)."""
    def row(t, m):
        return X[(t ^ t_ref) + 2 * (m ^ m_ref)]

    x00, x10, x01, x11 = row(0, 0), row(1, 0), row(0, 1), row(1, 1)
    return np.vstack([x10 - x00, x01 - x00, x11 - x10 - x01 + x00])


def reri(fm: FittedModel, treatment: str, conf_level: float, designs: dict,
         reference: str = "coded") -> dict[str, list[dict]]:
    """RERI, AP, SI (``additive``) and RR10, RR01, RR11, exp(b3) (``joint_effects``) for each
    binary modifier at the reference profile (``designs`` from :func:`reri_designs`).

    With no other interaction the contrasts are the coefficients (b_t, b_m, b_tm), as in
    epiR::epi.interaction; otherwise they do not depend on where continuous covariates that
    also interact with treatment have their zero.

    ``reference="lowest-risk"``: the reference stratum is the one of the four with the lowest
    predicted risk at the profile, the exposures recoded accordingly (Knol et al. 2011), so that
    no exposure is preventive; the ``reference`` column names the stratum."""
    out: dict[str, list[dict]] = {"additive": [], "joint_effects": []}
    if fm.link == "identity":
        return out
    label = "OR" if fm.link == "logit" else "RR"
    for name, (levels, X) in designs.items():
        t_ref = m_ref = 0
        if reference == "lowest-risk":
            lowest = int(np.argmin(X @ fm.params))  # log and logit links are increasing
            t_ref, m_ref = lowest % 2, lowest // 2
        L = _contrast_rows(X, t_ref, m_ref)
        tags = {"modifier": name, "model": fm.label,
                "reference": f"{treatment}={t_ref}, {name}={levels[m_ref]}"}
        add, joint = additive_interaction(L @ fm.params, fm.cov(L), conf_level, label)
        if (t_ref, m_ref) != (0, 0):
            why = (f"recoded: the reference is the lowest-risk stratum ({tags['reference']}; "
                   "Knol et al. 2011)")
            for r in add + joint:
                r["note"] = "; ".join(x for x in (why, r["note"]) if x)
        out["additive"] += [{**tags, **r} for r in add]
        out["joint_effects"] += [{**tags, **r} for r in joint]
    return out


def additive_interaction(b: np.ndarray, V: np.ndarray, conf_level: float, label: str
                         ) -> tuple[list[dict], list[dict]]:
    """From log-scale contrasts b = (b_t, b_m, b_tm) with covariance V: RERI, AP, SI rows and
    R10, R01, R11, exp(b_tm) rows, each with estimate, SE (of the log for ratios and SI),
    interval and note."""
    z = stats.norm.ppf(0.5 + conf_level / 2)
    with np.errstate(all="ignore"):  # a drifting (separated) coefficient: NaN, not a warning
        return _additive(np.asarray(b, float), np.asarray(V, float), z, label)


def _additive(b, V, z, label):
    bt, bm, btm = b
    r10, r01, r11 = np.exp(bt), np.exp(bm), np.exp(bt + bm + btm)
    reri_ = r11 - r10 - r01 + 1
    g_reri = np.array([r11 - r10, r11 - r01, r11])
    ap = reri_ / r11
    g_ap = np.array([(r11 - r10) / r11 - ap, (r11 - r01) / r11 - ap, 1 - ap])
    den = r10 + r01 - 2  # SI on the log scale
    g_lsi = np.array([r11 / (r11 - 1) - r10 / den, r11 / (r11 - 1) - r01 / den, r11 / (r11 - 1)])
    si = (r11 - 1) / den
    additive = [_row(f"{name}_{label}", est, g, V, z, log)
                for name, est, g, log in (("RERI", reri_, g_reri, False),
                                          ("AP", ap, g_ap, False), ("SI", si, g_lsi, True))]
    if not np.isfinite(additive[2]["estimate"]) and np.all(np.isfinite(b)):
        additive[2]["note"] = SI_NOTE
    joint = [_row(f"RR{name}_{label}", np.exp(g @ b), g, V, z, True)
             for name, g in (("10", np.array([1.0, 0, 0])), ("01", np.array([0, 1.0, 0])),
                             ("11", np.array([1.0, 1, 1])))]
    joint.append(_row(f"multiplicative_{label}", np.exp(btm), np.array([0, 0, 1.0]), V, z,
                      True))
    return additive, joint


def _row(measure: str, est: float, g: np.ndarray, V: np.ndarray, z: float, log: bool) -> dict:
    """Delta-method row: ``g`` is the gradient of the estimate (of its log when ``log``)."""
    se = float(np.sqrt(g @ V @ g))
    if log:
        lo, hi = np.exp(np.log(est) - z * se), np.exp(np.log(est) + z * se)
    else:
        lo, hi = est - z * se, est + z * se
    vals = [float(est), se, float(lo), float(hi)]
    note = ""
    if not np.all(np.isfinite(vals)):
        vals = [np.nan] * 4
        note = "not estimable: a contrast or its variance is not finite (separation?)"
    return {"measure": measure, "estimate": vals[0], "std_error": vals[1],
            "conf_low": vals[2], "conf_high": vals[3], "note": note}
