"""The frozen result of :func:`hte_report.fit` and its tidy frames.

Tidy frames are the single source of truth (columns as in docs/ARCHITECTURE): tables, forest
plots, the JSON export and the report all read them and never reach back into a fitted model.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TIDY_COLUMNS = [
    "modifier", "level", "scale", "estimate", "std_error", "conf_low", "conf_high", "statistic",
    "p_value", "n", "n_treated", "n_control", "events_treated", "events_control", "model",
    "method",
]
_FRAMES = ("subgroups", "overall", "curves", "interactions", "additive", "models", "profile",
           "exclusions", "interaction_effects", "analyses", "coefficients", "glance",
           "covariance", "joint_effects", "heterogeneity", "subgroup_differences")
RELATIVE_SCALES = ("RR", "OR", "RateRatio", "HR", "MeanRatio")


@dataclass(frozen=True)
class HTEResult:
    """Subgroup and conditional effects on absolute and relative scales, interaction tests and
    the overall effect, with the models that produced each number.

    Frames
    ------
    subgroups
        One row per (modifier, level, scale, model, method). ``method`` is ``standardized``
        (g-computation over the subgroup's rows) or ``conditional`` (at the reference profile in
        ``profile`` with the modifier at ``level``/``value``). For ratio scales ``std_error`` is
        the standard error of the log ratio.
    overall
        The standardized overall effect (ATE) from every model and scale.
    curves
        Conditional effects (native scale of each model) on a grid over the observed range of
        each continuous modifier, for effect curves.
    interactions
        Heterogeneity tests per modifier: ``wald`` (all treatment x modifier coefficients),
        ``lr`` (likelihood models) and ``equality`` (of standardized subgroup effects), with
        ``p_adjusted`` across modifiers.
    additive
        RERI, AP and SI for binary modifiers from ratio-scale models (label says OR or RR).
    joint_effects
        Beside ``additive``: RR10, RR01, RR11 against the stratum in ``reference`` and the
        multiplicative interaction exp(b3) (``multiplicative_OR`` / ``_RR``), with CIs.
    subgroup_differences
        Every pair of levels of each categorical modifier (later vs earlier level): the
        difference of the two standardized subgroup effects (ratio for ratio scales) with its
        CI from their joint covariance; the pairs with the first level are
        ``interaction_effects``.
    heterogeneity
        The joint test that no modifier changes the effect: every treatment x modifier
        coefficient of the joint model is zero (Wald, or F under t inference; LR for
        likelihood models with model-based variance), per working model and comparison; not
        adjusted for multiplicity (one test per model).
    coefficients, glance, covariance
        Every working model's coefficient table, model statistics and (long-form) coefficient
        covariance; :meth:`vcov` gives one model's matrix.
    models
        Every working model: link, variance estimator, convergence, fallbacks.
    """

    formula: str
    family: str
    outcome: str
    treatment: str
    treatment_labels: tuple[str, str]
    modifiers: tuple[str, ...]
    modifier_kinds: dict[str, str]
    adjustment: tuple[str, ...]
    exposure: str | None
    conf_level: float
    multiplicity: str
    subgroups: pd.DataFrame
    overall: pd.DataFrame
    curves: pd.DataFrame
    interactions: pd.DataFrame
    additive: pd.DataFrame
    models: pd.DataFrame
    profile: pd.DataFrame
    exclusions: pd.DataFrame
    n_input: int
    n_analysed: int
    data_sha256: str
    notes: tuple[str, ...] = ()
    version: str = ""
    created: str = ""
    labels: dict[str, str] = field(default_factory=dict)  # modifier -> display label
    posthoc: tuple[str, ...] = ()  # modifiers not pre-specified in a locked plan
    primary_spec: dict[str, list] = field(default_factory=dict)  # axis -> [scale, model]
    level_labels: dict[str, dict[str, str]] = field(default_factory=dict)  # value labels
    meta: dict = field(default_factory=dict)  # family-specific metadata (e.g. horizons)
    interaction_effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    strategy: str = "joint"  # how subgroup rows were analysed (see hte_report.fit)
    analyses: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per fitted analysis
    display_cutpoints: dict = field(default_factory=dict)  # continuous modifier -> cutpoints
    overall_analysis: str = ""  # "adjusted" | "unadjusted": the primary analysis of the overall row
    comparisons: tuple[str, ...] = ()  # "B vs A" per active arm of a k-arm treatment
    #: every working model's coefficient table (link scale, the model's variance; z or t)
    coefficients: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: one row per working model: n, log-likelihood, deviance, null deviance, AIC, BIC, df
    glance: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: every working model's coefficient covariance in long form (see :meth:`vcov`)
    covariance: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: beside ``additive``: the joint-exposure ratios R10, R01, R11 and the multiplicative
    #: interaction exp(b3) = R11 / (R10 R01) of each binary modifier, with CIs
    joint_effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: the joint (global) heterogeneity test across every modifier, per working model
    heterogeneity: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: every pair of levels of a categorical modifier: difference (or ratio) of the two
    #: standardized subgroup effects with its CI
    subgroup_differences: pd.DataFrame = field(default_factory=pd.DataFrame)

    # ----------------------------------------------------------------- selection
    @cached_property
    def primary(self) -> dict[str, tuple[str, str]]:
        """The (scale, model) shown by default on the absolute and the relative axis.

        Absolute: the first identity-link model's difference scale; relative: the first log-link
        model's ratio scale (logit's odds ratio if no log-link model was fitted). A result may
        set ``primary_spec`` (e.g. survival: RMST difference and Cox hazard ratio).
        """
        if self.primary_spec:
            return {axis: (v[0], v[1]) for axis, v in self.primary_spec.items()}
        fitted = self.models[self.models["converged"].astype(bool)]
        out: dict[str, tuple[str, str]] = {}
        diff = {"continuous": "MD", "binary": "RD", "count": "RateDiff"}[self.family]
        ratio = {"continuous": None, "binary": "RR", "count": "RateRatio"}[self.family]
        ident = fitted[fitted.link == "identity"].model.tolist()
        logs = fitted[fitted.link == "log"].model.tolist()
        logits = fitted[fitted.link == "logit"].model.tolist()
        any_model = fitted.model.tolist()
        if ident or any_model:
            out["absolute"] = (diff, (ident or any_model)[0])
        if ratio is not None and logs:
            out["relative"] = (ratio, logs[0])
        elif ratio is not None and logits:
            out["relative"] = ("OR", logits[0])
        return out

    def effects(self, axis: str, method: str = "standardized",
                comparison: str | None = None) -> pd.DataFrame:
        """Display rows for the primary (scale, model) of ``axis`` ('absolute'/'relative').

        Categorical modifiers: standardized effects per level (``method``). Continuous
        modifiers: standardized effects within the plan's display categories
        (``display_cutpoints``) when given, else model-based conditional effects at their
        quartiles (or ``at=`` values), never effects within arbitrary quarters, which would
        mix model predictions with crude counts. ``strategy="within-subgroup"``: the separate
        fits within each subgroup. ``comparison``: one active arm of a k-arm treatment.
        """
        scale, model = self._axis(axis)
        where = self._primary_filters(axis)
        df = self._comparison(self.subgroups, comparison)
        df = df[(df.scale == scale) & (df.model == model)
                & _matches(df, {k: v for k, v in where.items() if k != "method"})]
        if "analysis" in df:
            within = df.analysis == "within-subgroup"
            if self.strategy == "within-subgroup":
                return df[within].reset_index(drop=True)
            df = df[~within]
        if "method" in where:  # derived other than by standardization (km, slope): every row
            return df[df.method == where["method"]].reset_index(drop=True)
        if scale == "HR" and method == "standardized":
            method = "conditional"
        cont = df.modifier.map(lambda m: self.modifier_kinds.get(m) == "continuous")
        cut = df.modifier.isin(list(self.display_cutpoints)) & (df.method == "standardized")
        cut_mods = set(df.modifier[cut])
        keep = ((~cont & (df.method == method))
                | (cont & ~df.modifier.isin(cut_mods) & (df.method == "conditional"))
                | (cont & cut))
        return df[keep].reset_index(drop=True)

    def _axis(self, axis: str) -> tuple[str, str]:
        """(scale, model) of the primary analysis on ``axis``; an unknown axis is an error
        naming the axes this result has."""
        primary = self.primary
        if not isinstance(axis, str) or axis not in primary:
            from hte_report.spec.options import OptionError

            shown = ", ".join(f"{a!r} ({v[0]})" for a, v in primary.items())
            raise OptionError(f"axis={axis!r} is not an axis of this result; it has {shown} "
                              "(a continuous outcome has no relative axis).")
        return primary[axis]

    def _comparison(self, df: pd.DataFrame, comparison: str | None) -> pd.DataFrame:
        """Rows of one comparison (default: the first) of a k-arm treatment."""
        if comparison is not None and comparison not in self.comparisons:
            from hte_report.spec.options import OptionError

            have = (f"its comparisons are {list(self.comparisons)}" if self.comparisons
                    else "it has two arms and no comparisons")
            raise OptionError(f"comparison={comparison!r} is not a comparison of this result; "
                              f"{have}.")
        if not self.comparisons or "comparison" not in df:
            return df
        return df[df.comparison == (comparison or self.comparisons[0])]

    def _primary_filters(self, axis: str) -> dict:
        """Extra row filters of a primary spec (e.g. ``{"horizon": 1095.0}``, ``{"method":
        "km"}``), given as its optional third element."""
        spec = self.primary_spec.get(axis, [])
        return dict(spec[2]) if len(spec) > 2 and isinstance(spec[2], dict) else {}

    def overall_effect(self, axis: str, comparison: str | None = None) -> pd.Series:
        """The overall row of the primary analysis (``overall_analysis``) on ``axis``."""
        scale, model = self._axis(axis)
        df = self._comparison(self.overall, comparison)
        where = {k: v for k, v in self._primary_filters(axis).items() if k != "method"}
        rows = df[(df.scale == scale) & (df.model == model) & _matches(df, where)]
        if rows.empty:
            raise KeyError(f"no overall {scale} from {model}")
        return rows.iloc[0]

    def curve(self, axis: str, modifier: str, comparison: str | None = None) -> pd.DataFrame:
        """Effect-curve rows of a continuous modifier for the primary model of ``axis``."""
        scale, model = self._axis(axis)
        df = self._comparison(self.curves, comparison)
        if df.empty:
            return df
        return df[(df.model == model) & (df.modifier == modifier)].reset_index(drop=True)

    def interaction_p(self, axis: str, test: str = "wald",
                      comparison: str | None = None) -> pd.DataFrame:
        scale, model = self._axis(axis)
        df = self._comparison(self.interactions, comparison)
        where = {k: v for k, v in self._primary_filters(axis).items() if k != "method"}
        df = df[(df.model == model) & _matches(df, where)]
        rows = df[(df.test == test) & (df.scale == scale)]
        if rows.empty and test == "wald":  # e.g. SurvDiff from Cox, KM RMST: the equality test
            rows = df[(df.test == "equality") & (df.scale == scale)]
        if rows.empty:  # a logit model's Wald test is on the OR scale
            rows = df[df.test == test]
        return rows.reset_index(drop=True)

    def vcov(self, model: str | None = None, analysis: str | None = None,
             modifier: str | None = None, comparison: str | None = None,
             level: str | None = None) -> pd.DataFrame:
        """The coefficient covariance matrix (terms x terms, the variance the model reports)
        of one working model of one analysis, as R's ``vcov(fit)``.

        ``model``: its label as in ``coefficients.model`` (e.g. ``"logit"``, ``"ols-HC3"``) or
        its name (``"ols"``); ``analysis``: ``"overall-adjusted"``, ``"one-at-a-time"``,
        ``"joint"``, ``"within-subgroup"`` (from :func:`hte_report.fit`), or a modifier's name
        for its one-at-a-time model; ``modifier``, ``level``, ``comparison`` narrow further.
        Arguments that select several models, or none, raise an error listing the choices.
        """
        from hte_report.spec.options import OptionError

        cov = self.covariance
        if cov is None or cov.empty:
            raise OptionError("this result has no stored coefficient covariance (Surv() and "
                              "mixed-model results, designs wider than 200 columns, or a "
                              "result saved before it was added).")
        if analysis is not None and "analysis" in cov and analysis in set(cov.get(
                "modifier", pd.Series(dtype=object))) and analysis not in set(cov.analysis):
            analysis, modifier = "one-at-a-time", analysis
        keys = [k for k in ("comparison", "analysis", "modifier", "level", "model")
                if k in cov]
        fits = cov[keys].drop_duplicates()
        want = {"comparison": comparison, "analysis": analysis, "modifier": modifier,
                "level": level}
        for k, v in want.items():
            if v is not None and k in fits:
                fits = fits[fits[k].astype(str) == str(v)]
        if model is not None:
            base = fits.model.str.split("-HC|-CL|-model", regex=True).str[0]
            fits = fits[(fits.model == model) | (base == model)]
        if len(fits) != 1:
            choices = cov[keys].drop_duplicates()
            shown = "; ".join(", ".join(f"{k}={r[k]!r}" for k in keys if r[k] != "")
                              for _, r in choices.head(30).iterrows())
            what = "no working model" if fits.empty else f"{len(fits)} working models"
            raise OptionError(f"vcov(): {what} match the arguments; give model= and analysis= "
                              f"(and modifier=/comparison=) to pick one of: {shown}.")
        sel = fits.iloc[0]
        rows = cov[_matches(cov, {k: sel[k] for k in keys})]
        terms = list(dict.fromkeys(rows.term))
        out = rows.pivot(index="term", columns="term2", values="value")
        return out.loc[terms, terms].rename_axis(index=None, columns=None)

    # ----------------------------------------------------------------- views
    def table(self, **kwargs: Any):
        """Publication table (great-tables ``GT``): both scales side by side."""
        from hte_report.presentation.tables import subgroup_table
        from hte_report.spec.options import check_call

        check_call(subgroup_table, (self,), kwargs, name="table",
                   see="help(hte_report.presentation.tables.subgroup_table)", hints=False)
        return subgroup_table(self, **kwargs)

    def forest(self, ax=None, **kwargs: Any):
        """Forest plot with absolute and relative panels (matplotlib Figure)."""
        from hte_report.presentation.plots import forest_plot
        from hte_report.spec.options import check_call

        check_call(forest_plot, (self,), dict(kwargs, ax=ax), name="forest",
                   see="help(hte_report.presentation.plots.forest_plot)", hints=False)
        return forest_plot(self, ax=ax, **kwargs)

    def effect_curve(self, modifier: str, **kwargs: Any):
        """Conditional effect versus a continuous modifier, both scales (matplotlib Figure)."""
        from hte_report.presentation.plots import effect_curve
        from hte_report.spec.options import check_call

        check_call(effect_curve, (self, modifier), kwargs, name="effect_curve",
                   see="help(hte_report.presentation.plots.effect_curve)", hints=False)
        return effect_curve(self, modifier, **kwargs)

    def _repr_html_(self) -> str:
        return self.table().as_raw_html()

    def level_label(self, modifier: str, level: str) -> str:
        """Display text of a level: its value label from the plan with the code, e.g.
        'Yes (1)'; the level itself when no label is given."""
        lab = self.level_labels.get(modifier, {}).get(str(level))
        return f"{lab} ({level})" if lab else str(level)

    def with_plan(self, labels: dict[str, str], posthoc: tuple[str, ...],
                  level_labels: dict[str, dict[str, str]] | None = None) -> HTEResult:
        """A new result carrying display labels and the post hoc modifiers of a plan.

        Interaction p-values are re-adjusted so that the multiplicity family is the
        pre-specified modifiers; post hoc modifiers form their own family and are never counted
        as confirmatory.
        """
        from hte_report.core.inference import adjust_pvalues
        from hte_report.spec.options import check_multiplicity

        check_multiplicity(self.multiplicity)
        posthoc = tuple(posthoc)
        tests = self.interactions.drop(columns=["p_adjusted", "p_adjust_method"],
                                       errors="ignore")
        is_post = tests.modifier.isin(posthoc)
        parts = [adjust_pvalues(tests[~is_post], self.multiplicity),
                 adjust_pvalues(tests[is_post], self.multiplicity)]
        tests = pd.concat([p for p in parts if len(p)]).sort_index()
        tests["family"] = np.where(tests.modifier.isin(posthoc), "post hoc", "pre-specified")
        return replace(self, labels=dict(labels), posthoc=posthoc, interactions=tests,
                       level_labels=dict(level_labels or self.level_labels))

    def credibility(self, plan=None) -> pd.DataFrame:
        """ICEMAN answers per (modifier, scale, question) from the plan and these results."""
        from hte_report.presentation.credibility import iceman

        return iceman(self, plan)

    def summary(self) -> str:
        """Plain-text summary: overall effects, subgroup effects on both scales, tests."""
        lines = [
            f"HTE analysis: {self.formula}",
            f"family={self.family}  treatment={self.treatment} "
            f"({self.treatment_labels[1]} vs {self.treatment_labels[0]})  "
            f"n analysed={self.n_analysed} of {self.n_input}",
            "models: " + ", ".join(dict.fromkeys(
                f"{r.model} [{r.link} link, {r.variance} variance"
                + (", t inference on the residual df" if getattr(r, "inference", "z") == "t"
                   else "") + "]" for r in self.models.itertuples() if r.converged)),
        ]
        if "analysis" in self.subgroups:
            from hte_report.core.format import strategy_text

            lines.append("subgroup analyses: " + strategy_text(self.strategy))
            lines.append(f"overall row: primary analysis, {self.overall_analysis}"
                         + (f" for {', '.join(self.adjustment)}" if self.adjustment
                            and self.overall_analysis == "adjusted" else ""))
        for note in self.notes:
            lines.append(f"note: {note}")
        pct = int(round(self.conf_level * 100))
        for axis, (scale, model) in self.primary.items():
            o = self.overall_effect(axis)
            lines.append("")
            from hte_report.core.format import SCALE_NAMES

            eff = self.effects(axis)
            width = max([len(str(v)) for v in eff.level] + [26]) + 2
            lines.append(f"{axis} scale: {SCALE_NAMES.get(scale, scale)} from {model}")
            lines.append(f"  {'All patients':<{width + 2}}{_fmt_ci(o, pct)}")
            tests = self.interaction_p(axis).set_index("modifier")
            for mod in self.modifiers:
                tag = " (post hoc)" if mod in self.posthoc else ""
                p = tests.loc[mod, "p_value"] if mod in tests.index else np.nan
                padj = tests.loc[mod, "p_adjusted"] if mod in tests.index else np.nan
                adj = (f", {self.multiplicity}-adjusted {_fmt_p(padj)}"
                       if self.multiplicity != "none" else "")
                lines.append(f"  {mod}{tag}: p for interaction = {_fmt_p(p)}{adj}")
                for r in eff[eff.modifier == mod].itertuples():
                    lines.append(f"    {self.level_label(mod, r.level):<{width}}"
                                 f"{_fmt_ci(r, pct)}")
        return "\n".join(lines)

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.summary()

    # ----------------------------------------------------------------- export
    def to_dict(self) -> dict:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, pd.DataFrame):
                out[f.name] = json.loads(v.to_json(orient="split", index=False,
                                                   double_precision=15))
            elif isinstance(v, tuple):
                out[f.name] = list(v)
            else:
                out[f.name] = v
        return out

    def to_json(self, path: str | Path | None = None) -> str:
        if path is not None:
            path = file_path(path, "to_json", "res.to_json('result.json')",
                             "cannot write the result to")
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            try:
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(text)
            except OSError as exc:
                from hte_report.errors import HTEReportError

                raise HTEReportError(f"cannot write the result to {str(path)!r}: "
                                     f"{exc.strerror or exc}. Give the path of a file in a "
                                     "writable folder.") from None
        return text

    @classmethod
    def from_dict(cls, d: dict) -> HTEResult:
        from hte_report.errors import DataError

        if not isinstance(d, dict):
            raise DataError(f"HTEResult.from_dict() takes the dict of HTEResult.to_dict(), got "
                            f"{type(d).__name__}.")
        required = [f.name for f in fields(cls) if f.default is MISSING
                    and f.default_factory is MISSING]
        absent = [k for k in required if k not in d]
        if absent:
            raise DataError(f"not a saved hte_report result: keys {absent[:8]} are missing "
                            f"({len(absent)} of the {len(required)} every result has). Save "
                            "results with res.to_json(path) and read them with "
                            "HTEResult.from_json(path).")
        kw = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            v = d[f.name]
            if f.name in _FRAMES:
                try:
                    v = _numeric_nulls(pd.DataFrame(v["data"], columns=v["columns"]))
                except (TypeError, KeyError, ValueError, AssertionError):
                    raise DataError(f"not a saved hte_report result: its {f.name!r} is not a "
                                    "table as res.to_json() writes it.") from None
            elif isinstance(v, list):
                v = tuple(v)
            kw[f.name] = v
        return cls(**kw)

    @classmethod
    def from_json(cls, text: str) -> HTEResult:
        """A result from the text of :meth:`to_json`, or from the file it was written to."""
        from hte_report.errors import DataError

        if isinstance(text, Path) or (isinstance(text, str) and not text.lstrip().startswith(
                "{")):
            path = Path(text)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                why = getattr(exc, "strerror", None) or exc
                raise DataError(f"cannot read a result from {str(path)!r}: {why}. Give the "
                                "JSON text of res.to_json() or the path of the file it was "
                                "written to.") from None
        if not isinstance(text, str):
            raise DataError(f"HTEResult.from_json() takes JSON text or a file path, got "
                            f"{type(text).__name__}.")
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"not a saved hte_report result: invalid JSON ({exc.msg} at line "
                            f"{exc.lineno}, column {exc.colno}).") from None
        return cls.from_dict(d)


def file_path(value: object, what: str, example: str, action: str) -> Path:
    """``value`` as the path of a file: text or a path object (``action``, e.g. "cannot read
    an ARD from", starts the message about a directory). Anything else (an integer would
    be opened as a file descriptor by ``open``) is an :class:`~hte_report.errors.ArgumentError`;
    a directory is a :class:`~hte_report.errors.DataError`."""
    import os

    from hte_report.errors import ArgumentError, DataError, short

    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)):
        fd = (" (an integer would be taken as an open file descriptor)"
              if isinstance(value, int) and not isinstance(value, bool) else "")
        raise ArgumentError(f"{what} takes the path of a file as text or a pathlib.Path, e.g. "
                            f"{example}; got {type(value).__name__} {short(value, 40)}{fd}.")
    path = Path(value)
    if path.is_dir():
        raise DataError(f"{action} {str(path)!r}: it is a directory, not a file; give the path "
                        f"of a file in it, e.g. {example}.")
    return path


def require_result(obj: object, what: str) -> None:
    """``what`` (a table, an export) is made from an :class:`HTEResult`: anything else is an
    :class:`~hte_report.errors.ArgumentError` saying so."""
    if not isinstance(obj, HTEResult):
        from hte_report.errors import ArgumentError

        hint = (" (a PlannedAnalysis: pass its .result)" if hasattr(obj, "result") and
                isinstance(getattr(obj, "result", None), HTEResult) else "")
        raise ArgumentError(f"{what} takes the result of hte_report.fit (an HTEResult), got "
                            f"{type(obj).__name__}{hint}.")


def provenance(parsed, design, prep, profile: dict) -> dict[str, Any]:
    """The :class:`HTEResult` fields every fitting function fills the same way: roles of the
    formula, modifiers, reference profile, data provenance (input rows, exclusions, hash),
    package version and time of creation."""
    from datetime import datetime, timezone

    from hte_report._version import __version__

    return {
        "treatment_labels": prep.treatment_labels,
        "modifiers": tuple(m.name for m in design.modifiers),
        "modifier_kinds": {m.name: m.kind for m in design.modifiers},
        "adjustment": parsed.adjustment,
        "profile": pd.DataFrame({"variable": list(profile),
                                 "value": [str(v) for v in profile.values()]}),
        "exclusions": prep.exclusions,
        "n_input": prep.n_input,
        "data_sha256": prep.data_sha256,
        "version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _matches(df: pd.DataFrame, where: dict) -> pd.Series:
    keep = pd.Series(True, index=df.index)
    for col, val in where.items():
        if col not in df.columns:
            return pd.Series(False, index=df.index)
        if isinstance(val, (int, float)) and not isinstance(val, bool):
            keep &= np.isclose(pd.to_numeric(df[col], errors="coerce").astype(float), val)
        else:
            keep &= df[col] == val
    return keep


def _numeric_nulls(df: pd.DataFrame) -> pd.DataFrame:
    """JSON null in a numeric column is NaN, not None."""
    for col in df.columns:
        s = df[col]
        if s.dtype == object:
            vals = [v for v in s if v is not None]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
                df[col] = pd.to_numeric(s.astype(object).where(s.notna(), np.nan),
                                        errors="coerce").astype(float)
    return df


def _fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _fmt_ci(r, pct: int) -> str:
    from hte_report.core.format import fmt_ci

    est = getattr(r, "estimate", np.nan)
    if not np.isfinite(est):
        return getattr(r, "note", "") or "not estimable"
    return fmt_ci(est, r.conf_low, r.conf_high, r.scale) + f"  [{pct}% CI]"
