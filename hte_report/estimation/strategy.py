"""Subgroup analyses as a statistical analysis plan defines them.

The interaction formula ``y ~ treat * (m1 + m2) + z`` names the modifiers (m1, m2), the
adjustment covariates (z) and the treatment. How the subgroup rows are *analysed* is a separate,
pre-specified choice, the **strategy**:

``one-at-a-time`` (default; EMA 2019, NEJM 2007 practice)
    For each modifier m, the model ``y ~ treat * m + z``: the modifier, its interaction and the
    adjustment covariates, never the other modifiers. Its subgroup effects, conditional effects,
    curves, interaction tests and interaction effects come from that model, fitted on the rows
    where *its* variables are observed.
``joint``
    One model with every modifier's interaction (mutually adjusted), on the rows where every
    variable is observed.
``within-subgroup``
    Separate fits ``y ~ treat + z`` within each level of each modifier (display categories of a
    continuous one), the tern/survminer display, as a sensitivity view; interaction tests and
    effects come from the one-at-a-time models.

The overall row is always the **primary analysis**, ``y ~ treat + z`` (``overall="adjusted"``)
or ``y ~ treat`` (``"unadjusted"``), on every patient with the outcome (and the adjustment
covariates) observed, whatever the strategy. A treatment with k >= 3 arms is analysed as k - 1
comparisons of each active arm with the named control, each on the patients of its two arms
(concurrent controls), with rows tagged by ``comparison``.

Every row of every frame says which analysis produced it (``analysis``, ``comparison``);
``HTEResult.analyses`` lists each fitted analysis with its formula, rows used and rows excluded.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hte_report.core.inference import adjust_pvalues
from hte_report.data.digest import dataset_sha256
from hte_report.data.prepare import read_data
from hte_report.design.build import cut_categories, quarter_bins
from hte_report.errors import DataError, HTEReportError, SparseSubgroupWarning
from hte_report.estimation import glm
from hte_report.estimation.global_tests import with_global_tests, with_joint_test
from hte_report.estimation.survival import fit_survival
from hte_report.results.result import HTEResult
from hte_report.spec.formula import formula_text, quote_name, short, split_formula
from hte_report.spec.options import (
    OptionError,
    check_choice,
    check_multiplicity,
    check_numbers,
)

STRATEGIES = ("one-at-a-time", "joint", "within-subgroup")
#: Frames with one block per working model (tagged with the analysis that fitted it).
MODEL_FRAMES = ("coefficients", "glance", "covariance")
OVERALL_ANALYSES = ("adjusted", "unadjusted")

@dataclass(frozen=True)
class Roles:
    """The formula's parts: outcome side, treatment, each modifier's terms, adjustment."""

    lhs: str
    treatment: str
    modifiers: dict  # modifier column -> list of formulaic terms (main effect, interactions)
    kinds: dict  # modifier column -> "categorical" | "continuous" | "unknown"
    adjustment: list  # formulaic terms of adjustment covariates
    strata: str  # " + strata(...)" text of a Surv() formula, or ""
    adjustment_columns: tuple[str, ...]
    outcome: tuple[str, ...] = ()  # (outcome,) or (time, event)
    strata_columns: tuple[str, ...] = ()
    modifier_columns: dict | None = None  # modifier -> data columns its terms use

    def own_terms(self, name: str) -> list[str]:
        """Text of a modifier's terms without the treatment (its main effect)."""
        return [formula_text([t]) for t in self.modifiers[name]
                if self.treatment not in [f.expr for f in t.factors]]

    def formula(self, terms) -> str:
        rhs = " + ".join([quote_name(self.treatment)] + ([formula_text(terms)] if terms else []))
        return f"{self.lhs} ~ {rhs}{self.strata}"

    def modifier_formula(self, name: str) -> str:
        return self.formula(self.modifiers[name] + self.adjustment)

    def joint_formula(self) -> str:
        return self.formula([t for terms in self.modifiers.values() for t in terms]
                            + self.adjustment)

    def overall_formula(self, overall) -> str:
        if isinstance(overall, tuple):  # named covariates (terms) of the primary analysis
            rhs = " + ".join([quote_name(self.treatment), *overall])
            return f"{self.lhs} ~ {rhs}{self.strata}"
        return self.formula(self.adjustment if overall == "adjusted" else [])

    @property
    def adjusted_for(self) -> str:
        return ", ".join(self.adjustment_columns) or "nothing"


def roles(formula: str, raw: pd.DataFrame, treatment, safe: bool, survival: bool) -> Roles:
    """Split the formula into the parts every strategy recombines (validating it first)."""
    from hte_report.spec.formula import parse_formula
    from hte_report.spec.surv import parse_surv_formula

    binary = [c for c in raw.columns if treatment is None and raw[c].nunique(dropna=True) == 2]
    if survival:
        sf = parse_surv_formula(formula, raw.columns, treatment, safe, binary)
        parsed, rhs_formula = sf.parsed, sf.parsed.formula
        strata = "".join(f" + strata({quote_name(c)})" for c in sf.strata)
    else:
        parsed = parse_formula(formula, raw.columns, treatment=treatment, safe=safe,
                               binary_columns=binary)
        rhs_formula, strata = formula, ""
    terms, _ = split_formula(rhs_formula, safe, "y ~ treat * (age + sex)")
    from hte_report.spec.formula import _factor_columns

    mods = {m.name: [] for m in parsed.modifiers}
    adjustment = []
    for term in terms.rhs:
        exprs = [f.expr for f in term.factors]
        if exprs == ["1"] or exprs == [parsed.treatment]:
            continue
        cols = {c for f in term.factors for c in _factor_columns(f, raw.columns)}
        touched = [m for m in mods if m in cols]
        if touched:
            for m in touched:
                mods[m].append(term)
        else:
            adjustment.append(term)
    adj_cols = tuple(dict.fromkeys(
        c for t in adjustment for f in t.factors for c in _factor_columns(f, raw.columns)))
    lhs = formula.split("~", 1)[0].strip()
    outcome = (sf.time, sf.event) if survival else (parsed.outcome,)
    mod_cols = {m: sorted({c for t in ts for f in t.factors
                           for c in _factor_columns(f, raw.columns)} - {parsed.treatment})
                for m, ts in mods.items()}
    return Roles(lhs, parsed.treatment, mods, {m.name: m.kind for m in parsed.modifiers},
                 adjustment, strata, adj_cols + tuple(
                     f"strata({c})" for c in (sf.strata if survival else ())),
                 outcome, tuple(sf.strata) if survival else (), mod_cols)


def fit_by_strategy(formula: str, data: object, *, strategy: str = "one-at-a-time",
                    treatment: str | None = None, reference: object = None,
                    control: object = None, overall: str = "adjusted",
                    display_cutpoints: dict | None = None, at: dict | None = None,
                    multiplicity: str = "holm", safe_formula: bool = False,
                    **engine_kw) -> HTEResult:
    """The analyses of ``strategy`` (see the module docstring), combined into one result.
    ``engine_kw`` go to every fit (family, models, variance, ...; ties, horizons, rmst_tau for
    ``Surv()`` outcomes).

    The analyses share what depends on the data frame only (its hash, factorized text
    columns) and the setup and fits of identical models (the joint model and the joint
    heterogeneity test): :func:`~hte_report.data.prepare.same_data`. BLAS runs on one thread
    throughout: the products are small (p columns), and threaded BLAS on busy cores made
    small analyses several times slower (issue 21)."""
    from hte_report.data.prepare import same_data
    from hte_report.models.fast import one_blas_thread

    with same_data(), one_blas_thread():
        try:
            return _fit_by_strategy(formula, data, strategy=strategy, treatment=treatment,
                                    reference=reference, control=control, overall=overall,
                                    display_cutpoints=display_cutpoints, at=at,
                                    multiplicity=multiplicity, safe_formula=safe_formula,
                                    **engine_kw)
        except TypeError:
            from hte_report.estimation.setup import check_hashable

            if isinstance(data, pd.DataFrame):
                check_hashable(data)
            raise


def _fit_by_strategy(formula, data, *, strategy, treatment, reference, control, overall,
                     display_cutpoints, at, multiplicity, safe_formula,
                     **engine_kw) -> HTEResult:
    check_choice("strategy", strategy, STRATEGIES)
    overall = _check_overall(overall)
    check_multiplicity(multiplicity)
    _check_scalars(reference=reference, control=control, exposure=engine_kw.get("exposure"),
                   treatment=treatment)
    if at is not None and not isinstance(at, dict):
        raise OptionError(f"at= must map effect modifiers to values or levels, e.g. "
                          f"at={{'age': [40, 60], 'sex': ['f']}}; got {short(at)}.")
    survival = isinstance(formula, str) and formula.split("~")[0].strip().startswith("Surv(")
    from hte_report.data.largedata import CellData

    cells = isinstance(data, CellData)
    raw = data.frame if cells else read_data(data)
    r = roles(formula, raw, treatment, safe_formula, survival)
    if cells and strategy == "within-subgroup":
        raise OptionError("strategy='within-subgroup' needs patient rows; pre-aggregated cells "
                          "support 'one-at-a-time' and 'joint'.")
    cutpoints = _check_cutpoints(display_cutpoints, r)
    _warn_empty_cutpoints(cutpoints, raw)
    at = dict(at or {})
    unknown = set(at) - set(r.modifiers)
    if unknown:  # a covariate profile (at= for adjustment covariates) is glm.fit's for now
        raise OptionError(f"at= names {sorted(unknown)}, which are not effect modifiers "
                          f"({list(r.modifiers)}).")
    engine = fit_survival if survival else glm.fit
    kw = dict(engine_kw, multiplicity="none", safe_formula=safe_formula)
    arms = _arms(raw, r.treatment, control if control is not None else reference)
    if cells and len(arms) > 1:
        raise OptionError("a treatment with three or more arms needs patient rows; aggregate "
                          "each comparison's two arms separately.")
    parts = []
    for comparison, rows, ref in arms:
        sub = data if cells else raw.loc[rows] if rows is not None else raw
        parts.append(_two_arm(sub, r, engine, kw,
                              strategy=strategy, reference=ref, overall=overall,
                              cutpoints=cutpoints, at=at, comparison=comparison))
    for m in cutpoints:
        kind = parts[0].by_modifier[m].modifier_kinds.get(m)
        if kind == "categorical":
            raise OptionError(f"display_cutpoints[{m!r}]: {m!r} is analysed as categorical; "
                              "display cutpoints apply to continuous modifiers. Remove them.")
    res = _combine(parts, formula, r, raw, strategy, multiplicity, cutpoints, overall, arms)
    del parts
    res = with_joint_test(res, data if cells else raw, r, arms, engine_kw, safe_formula,
                          survival)
    untreated = int(raw[r.treatment].isna().sum()) if len(arms) > 1 else 0
    if untreated:
        from dataclasses import replace as _replace

        from hte_report.errors import MissingDataWarning

        why = (f"{untreated} of {len(raw)} rows have no value of {r.treatment!r} and are in no "
               "comparison")
        warnings.warn(why + ".", MissingDataWarning, stacklevel=3)
        res = _replace(res, notes=(*res.notes, why))
    if len(arms) > 1:
        res = with_global_tests(res, raw, r, arms, strategy, survival, engine_kw, multiplicity)
    return res


def _check_scalars(**given) -> None:
    """Options naming one column or one arm must be one name or value, not a list."""
    for name, value in given.items():
        if value is None:
            continue
        if name in ("exposure", "treatment") and not isinstance(value, str):
            raise OptionError(f"{name}= must be the name of one column (text), got "
                              f"{short(value)}.")
        if isinstance(value, (list, tuple, set, dict, np.ndarray, pd.Series)):
            raise OptionError(f"{name}= must be one arm of the treatment (a single value such "
                              f"as 0 or 'placebo'), got {short(value)}.")


def _warn_empty_cutpoints(cutpoints: dict, raw: pd.DataFrame) -> None:
    """A display cutpoint at or beyond the modifier's observed range makes an empty display
    category, which is then not shown: say so."""
    for m, cuts in cutpoints.items():
        if m not in raw.columns:
            continue
        x = pd.to_numeric(raw[m], errors="coerce").to_numpy(dtype=float)
        x = x[np.isfinite(x)]
        if not len(x):
            continue
        lo, hi = float(x.min()), float(x.max())
        outside = [c for c in cuts if c <= lo or c > hi]
        if outside:
            warnings.warn(
                f"display_cutpoints[{m!r}] {outside} lie outside the observed range of {m!r} "
                f"({lo:g} to {hi:g}): the display category beyond them has no patients and is "
                "not shown.", SparseSubgroupWarning, stacklevel=4)


def _check_overall(overall):
    """"adjusted", "unadjusted", or the covariates (formula terms) of the primary analysis."""
    if isinstance(overall, str):
        check_choice("overall", overall, OVERALL_ANALYSES)
        return overall
    if isinstance(overall, (list, tuple)) and overall and all(
            isinstance(t, str) and t.strip() for t in overall):
        return tuple(t.strip() for t in overall)
    raise OptionError(f"overall={short(overall)} is not allowed; expected 'adjusted', "
                      "'unadjusted' or a list of covariates (formula terms) such as "
                      "['age', 'C(stratum)'].")


def _overall_name(overall) -> str:
    return ("adjusted for " + ", ".join(overall)) if isinstance(overall, tuple) else overall


def _check_cutpoints(given, r: Roles) -> dict:
    if not given:
        return {}
    if not isinstance(given, dict):
        raise OptionError("display_cutpoints must map continuous modifiers to cutpoints, e.g. "
                          "{'age': [65]}.")
    out = {}
    for name, cuts in given.items():
        if name not in r.modifiers:
            raise OptionError(f"display_cutpoints names {short(name)}, which is not an effect "
                              f"modifier ({list(r.modifiers)}).")
        vals = sorted(check_numbers(f"display_cutpoints[{name!r}]", cuts,
                                    f"display_cutpoints={{{name!r}: [65]}}"))
        if not vals or not np.all(np.isfinite(vals)) or len(set(vals)) != len(vals):
            raise OptionError(f"display_cutpoints[{name!r}] must be distinct finite numbers, "
                              f"got {short(cuts)}.")
        out[name] = vals
    return out


def _arms(raw: pd.DataFrame, treatment: str, control) -> list:
    """(comparison label, row mask or None, reference) per comparison: one for two arms, one
    per active arm against ``control`` for k >= 3 arms."""
    values = [v for v in pd.unique(raw[treatment]) if not pd.isna(v)]
    if len(values) < 3:
        if control is not None and len(values) == 2 and not any(
                v == control or str(v) == str(control) for v in values):
            raise DataError(f"control={control!r} is not an arm of treatment {treatment!r} "
                            f"({[str(v) for v in values]}); name the control arm's value.")
        return [(None, None, control)]
    values = sorted(values, key=lambda v: (str(type(v)), v))
    if control is None:
        raise DataError(
            f"treatment {treatment!r} has {len(values)} arms ({[str(v) for v in values][:8]}); "
            "name the control arm with control=... (each active arm is compared with it).")
    match = [v for v in values if v == control or str(v) == str(control)]
    if not match:
        raise DataError(f"control={control!r} is not an arm of treatment {treatment!r} "
                        f"({[str(v) for v in values][:8]}).")
    ctrl = match[0]
    return [(f"{a} vs {ctrl}", raw[treatment].isin([ctrl, a]).to_numpy(), ctrl)
            for a in values if a != ctrl]


def _run(label: str, engine, formula: str, data, **kw) -> HTEResult:
    """One analysis; its warnings and errors say which analysis they come from."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = engine(formula, data, **kw)
        except HTEReportError as exc:
            raise type(exc)(f"{label}: {exc}") from None
    seen = set()
    for w in caught:
        key = (w.category, str(w.message))
        if key not in seen:
            seen.add(key)
            warnings.warn(f"{label}: {w.message}", w.category, stacklevel=5)
    return res


def _tag(df: pd.DataFrame, analysis: str, comparison) -> pd.DataFrame:
    df = df.copy()
    df.insert(0, "analysis", analysis)
    df.insert(0, "comparison", comparison or "")
    return df


@dataclass
class _Part:
    """The analyses of one comparison."""

    comparison: str | None
    overall: HTEResult
    by_modifier: dict  # modifier -> HTEResult of its own (or the joint) model
    within: dict  # (modifier, level) -> HTEResult or error text
    within_levels: dict  # modifier -> list of (level, order)
    analysis: str


def _two_arm(raw, r: Roles, engine, kw, *, strategy, reference, overall, cutpoints, at,
             comparison) -> _Part:
    where = f"{comparison}: " if comparison else ""
    ov = _run(f"{where}overall analysis ({_overall_name(overall)})", engine,
              r.overall_formula(overall), raw, treatment=r.treatment, reference=reference,
              modifiers_required=False, **kw)
    by_mod, within, levels = {}, {}, {}
    if strategy == "joint":
        res = _run(f"{where}joint model", engine, r.joint_formula(), raw,
                   treatment=r.treatment, reference=reference, cutpoints=cutpoints, at=at, **kw)
        by_mod = {m: res for m in r.modifiers}
    else:
        for m in r.modifiers:
            by_mod[m] = _run(f"{where}analysis of {m}", engine, r.modifier_formula(m), raw,
                             treatment=r.treatment, reference=reference,
                             cutpoints={m: cutpoints[m]} if m in cutpoints else None,
                             at={m: at[m]} if m in at else None, **kw)
    if strategy == "within-subgroup":
        for m in r.modifiers:
            levels[m] = []
            for order, (level, rows) in enumerate(_subsets(raw, r, m, by_mod[m], cutpoints)):
                levels[m].append((level, order))
                try:
                    within[m, level] = _run(
                        f"{where}{m} = {level}", engine, r.overall_formula("adjusted"),
                        raw.loc[rows], treatment=r.treatment, reference=reference,
                        modifiers_required=False, **kw)
                except HTEReportError as exc:
                    within[m, level] = f"not estimable: {exc}"
    return _Part(comparison, ov, by_mod, within, levels,
                 "joint" if strategy == "joint" else "one-at-a-time")


def _subsets(raw, r: Roles, m: str, res: HTEResult, cutpoints) -> list:
    """(level, row mask of ``raw``) of each subgroup of ``m`` as its own analysis shows them:
    the levels of a categorical modifier; display categories (cutpoints, else quarters) of a
    continuous one."""
    col = raw[m]
    if res.modifier_kinds.get(m) == "categorical":
        rows = res.subgroups[res.subgroups.modifier == m]
        out = []
        text = col.map(lambda v: None if pd.isna(v) else str(v))
        for level in dict.fromkeys(rows.sort_values("order").level):
            mask = (text == level).to_numpy()
            if not mask.any() and pd.api.types.is_numeric_dtype(col):
                mask = (col.astype(float) == float(level)).to_numpy()
            out.append((level, mask))
        return out
    x = pd.to_numeric(col, errors="coerce").to_numpy(float)
    ok = np.isfinite(x)
    if m in cutpoints:
        return [(label, mask & ok) for label, mask in cut_categories(x, cutpoints[m])
                if (mask & ok).any()]
    used = res.subgroups[(res.subgroups.modifier == m) & (res.subgroups.method == "standardized")]
    labels = list(dict.fromkeys(used.sort_values("order").level))
    codes, edges = quarter_bins(pd.Series(x[ok]))
    out = []
    for i, label in enumerate(labels[: len(edges) - 1]):
        mask = np.zeros(len(x), dtype=bool)
        mask[np.flatnonzero(ok)[codes == i]] = True
        out.append((label, mask))
    return out


# ----------------------------------------------------------------------------- combining
def _combine(parts: list[_Part], formula, r: Roles, raw, strategy, multiplicity, cutpoints,
             overall, arms) -> HTEResult:
    frames = {k: [] for k in ("subgroups", "curves", "interactions", "additive",
                              "interaction_effects", "models", "profile", "overall",
                              "joint_effects", "subgroup_differences",
                              *MODEL_FRAMES)}
    analyses, notes = [], []
    first = parts[0].overall
    for part in parts:
        c = part.comparison
        ov = part.overall
        label = "overall-adjusted" if isinstance(overall, tuple) else f"overall-{overall}"
        frames["overall"].append(_tag(ov.overall, label, c))
        for key in ("models", *MODEL_FRAMES):
            frames[key].append(_tag(getattr(ov, key), label, c).assign(modifier=""))
        analyses.append(_analysis_row(c, label, "", "", ov, r.overall_formula(overall)))
        notes += [f"{c + ': ' if c else ''}overall analysis: {n}" for n in ov.notes]
        done = set()
        for m in r.modifiers:
            res = part.by_modifier[m]
            a = part.analysis
            for key in ("subgroups", "curves", "interactions", "additive",
                        "interaction_effects", "joint_effects", "subgroup_differences"):
                df = getattr(res, key)
                if len(df) and "modifier" in df:
                    frames[key].append(_tag(df[df.modifier == m], a, c))
            if id(res) in done:
                continue
            done.add(id(res))
            mods = "" if a == "joint" else m
            for key in ("models", *MODEL_FRAMES):
                frames[key].append(_tag(getattr(res, key), a, c).assign(modifier=mods))
            frames["profile"].append(_tag(res.profile, a, c).assign(modifier=mods))
            analyses.append(_analysis_row(c, a, mods, "", res, r.joint_formula() if a == "joint"
                                          else r.modifier_formula(m)))
            notes += [f"{c + ': ' if c else ''}{'joint model' if a == 'joint' else m}: {n}"
                      for n in res.notes]
        for m, levels in part.within_levels.items():
            for level, order in levels:
                w = part.within[m, level]
                frames["subgroups"].append(_within_rows(w, m, level, order, c, part, r))
                if isinstance(w, HTEResult):
                    for key in ("models", *MODEL_FRAMES):
                        frames[key].append(_tag(getattr(w, key), "within-subgroup", c)
                                           .assign(modifier=m, level=level))
                    analyses.append(_analysis_row(c, "within-subgroup", m, level, w,
                                                  r.overall_formula("adjusted")))
    out = {k: _concat(v) for k, v in frames.items()}
    tests = out["interactions"].drop(columns=["p_adjusted", "p_adjust_method"], errors="ignore")
    tests = adjust_pvalues(tests, multiplicity)
    kinds = {}
    for part in parts:
        for m, res in part.by_modifier.items():
            kinds[m] = res.modifier_kinds.get(m, "unknown")
    labels = first.treatment_labels
    comparisons = tuple(p.comparison for p in parts if p.comparison)
    if comparisons:
        ctrl = str(arms[0][2])
        labels = (ctrl, ", ".join(c.split(" vs ")[0] for c in comparisons))
    overall_frame = out["overall"]
    return HTEResult(
        formula=formula, family=first.family, outcome=first.outcome, treatment=r.treatment,
        treatment_labels=labels, modifiers=tuple(r.modifiers), modifier_kinds=kinds,
        adjustment=r.adjustment_columns, exposure=first.exposure, conf_level=first.conf_level,
        multiplicity=multiplicity, subgroups=out["subgroups"], overall=overall_frame,
        curves=out["curves"], interactions=tests, additive=out["additive"],
        models=out["models"], profile=out["profile"], exclusions=first.exclusions,
        n_analysed=first.n_analysed,
        data_sha256=dataset_sha256(raw) if comparisons else first.data_sha256,
        n_input=len(raw) if comparisons else first.n_input,
        notes=tuple(dict.fromkeys(notes)), version=first.version, created=first.created,
        primary_spec=first.primary_spec, meta=_meta(first, parts),
        interaction_effects=out["interaction_effects"], strategy=strategy,
        analyses=pd.DataFrame(analyses), display_cutpoints=cutpoints,
        overall_analysis=_overall_name(overall),
        comparisons=comparisons, joint_effects=out["joint_effects"],
        subgroup_differences=out["subgroup_differences"],
        **{k: out[k] for k in MODEL_FRAMES},
    )


def _meta(first: HTEResult, parts: list[_Part]) -> dict:
    """The primary analysis's metadata; for survival also the proportional-hazards tests
    (cox.zph per term) of each modifier's model (``ph_tests_by_model``: "joint" or the modifier,
    prefixed by the comparison of a k-arm treatment)."""
    meta = dict(first.meta)
    if "ph_tests" in meta:
        by = {}
        for part in parts:
            where = f"{part.comparison}: " if part.comparison else ""
            for m, res in part.by_modifier.items():
                key = where + ("joint" if part.analysis == "joint" else m)
                by[key] = res.meta.get("ph_tests", [])
        meta["ph_tests_by_model"] = by
    return meta


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f.columns)]
    if not frames:
        return pd.DataFrame()
    nonempty = [f for f in frames if len(f)]
    return pd.concat(nonempty or frames[:1], ignore_index=True)


def _within_rows(w, m, level, order, comparison, part: _Part, r: Roles) -> pd.DataFrame:
    """The overall rows of a fit within one subgroup, as that subgroup's rows."""
    if isinstance(w, HTEResult):
        df = w.overall.copy()
    else:  # the fit failed: one not-estimable row per scale the other analyses report
        ref = part.overall.overall
        df = ref.copy()
        for col in ("estimate", "std_error", "conf_low", "conf_high", "statistic", "p_value"):
            if col in df:
                df[col] = np.nan
        for col in ("n", "n_treated", "n_control", "events_treated", "events_control"):
            if col in df:
                df[col] = np.nan
        df["note"] = w
    df["modifier"], df["level"], df["order"] = m, level, order
    if "value" in df:
        df["value"] = np.nan
    return _tag(df, "within-subgroup", comparison)


def _analysis_row(comparison, analysis, modifier, level, res: HTEResult, formula) -> dict:
    excl = res.exclusions
    detail = ""
    if len(excl) and "n_missing" in excl:
        detail = ", ".join(f"{v}: {int(n)}" for v, n in zip(excl.variable, excl.n_missing) if n)
    return {"comparison": comparison or "", "analysis": analysis, "modifier": modifier,
            "level": level, "formula": formula, "n_input": int(res.n_input),
            "n_analysed": int(res.n_analysed),
            "n_excluded": int(res.n_input - res.n_analysed), "excluded_for": detail}
