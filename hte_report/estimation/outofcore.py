"""``fit_file``: the interaction analysis of a file larger than memory, continuous covariates
included, by exact IRLS whose sums are aggregated inside DuckDB (or Spark).

The analysis is :func:`hte_report.fit`'s joint model (``strategy="joint"``) on the complete
rows: every working model's coefficients and variance (model-based, HC0-HC3, cluster), the
standardized effects overall and per level of each categorical modifier on every scale, the
per-unit interaction of each continuous modifier, Wald, likelihood-ratio (logit, model-based
variance) and equality tests, with the same frames and row builders as ``fit``. Not computed
out of core: conditional effects at profiles, effect curves, display quarters of continuous
modifiers, RERI (they need the data's quantiles or more passes; fit a sample in memory for
them). Memory is bounded by the engine's limit, not the rows.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from hte_report.core.inference import adjust_pvalues
from hte_report.data.ooc_engines import check_dataset_directory, engine_for, source_sha256
from hte_report.data.ooc_scan import FileFacts, scan
from hte_report.data.ooc_sql import Job, leverage_rows_query
from hte_report.design.build import Subgroup
from hte_report.errors import ArgumentError, DataError, MissingDataWarning, ModelError, short
from hte_report.estimation import outofcore_fit as oc
from hte_report.estimation.coefficients import (
    COEFFICIENT_COLUMNS,
    GLANCE_COLUMNS,
    coefficient_rows,
    covariance_rows,
)
from hte_report.estimation.coefficients import test_row as _test_row
from hte_report.estimation.contrasts import Means, lr_test, wald_test
from hte_report.estimation.glm import (
    ROW_COLUMNS,
    TEST_COLUMNS,
    _interaction_effects,
    _model_row,
    _native,
    _standardized,
    _undefined,
    equality_rows,
    sparse_cells,
)
from hte_report.estimation.interaction_effects import COLUMNS as EFFECT_COLUMNS
from hte_report.estimation.outofcore_design import design_sql
from hte_report.models.glm import FittedModel
from hte_report.results.result import HTEResult, provenance
from hte_report.spec.options import (
    MODELS,
    Cluster,
    OptionError,
    check_conf_level,
    check_family,
    check_inference,
    check_models,
    check_multiplicity,
    check_variance,
    checked_arguments,
    default_variance,
    model_inference,
    variance_label,
)

#: The working models whose link the SQL passes know (canonical links of their family).
SUPPORTED = ("ols", "logit", "modified-poisson")


@checked_arguments
def fit_file(
    source: str | Path,
    formula: str,
    *,
    treatment: str | None = None,
    family: str = "binary",
    models=None,
    variance=None,
    cluster: str | None = None,
    reference: object = None,
    conf_level: float = 0.95,
    multiplicity: str = "holm",
    memory_limit: str = "512MB",
    threads: int | None = None,
    engine: str = "duckdb",
    safe_formula: bool = True,
) -> HTEResult:
    """Analyse a Parquet (or CSV) file that need not fit in memory, continuous covariates
    included: the joint interaction model of :func:`hte_report.fit` by exact IRLS passes over
    the file (see the module docstring for what is and is not computed).

    ``engine="duckdb"`` (a file on this machine; ``memory_limit`` and ``threads`` are DuckDB's
    settings) or ``"spark"`` (pyspark; a running SparkSession is used, else a local one). Both
    run the same SQL passes and give the same numbers. ``cluster``: cluster-robust variance
    for every model (as ``variance=Cluster(cluster)``). Timing, passes and the file's SHA-256
    (one extra read of the file) are in ``result.meta["outofcore"]``.

    ``source``: a Parquet or CSV file, or a directory holding a Parquet dataset (its data files
    end in ``.parquet``, as Spark, pyarrow or DuckDB write them; bookkeeping files such as
    ``_SUCCESS`` or ``.crc`` files are ignored, any other file is refused rather than left
    unread). Rows missing a used variable are excluded, counted in ``result.exclusions`` and
    warned about (:class:`~hte_report.errors.MissingDataWarning`), as :func:`hte_report.fit`
    does.
    """
    t0 = time.perf_counter()
    path = _source_path(source, formula)
    conf_level = check_conf_level(conf_level)
    check_multiplicity(multiplicity)
    family = check_family(family)
    if family == "count":
        raise OptionError("family='count' is not available out of core yet (its Poisson "
                          "log-likelihood needs log y!); use hte_report.fit on data in memory.")
    var_opt = check_variance(variance)
    if cluster is not None:
        if var_opt is not None and not isinstance(var_opt, Cluster):
            raise OptionError(f"cluster={cluster!r} and variance={variance!r} conflict; give "
                              "one of them.")
        var_opt = Cluster(cluster)
    cluster = var_opt.column if isinstance(var_opt, Cluster) else None
    names = check_models(models, family)
    for name in names:
        if name not in SUPPORTED:
            raise OptionError(f"model {name!r} is not available out of core; use "
                              f"{[m for m in SUPPORTED if family in MODELS[m].families]}.")
    variances = {n: var_opt if var_opt is not None else default_variance(n) for n in names}
    for n, v in variances.items():
        if MODELS[n].robust_only and v == "model":
            raise ModelError(f"{n} needs a robust variance; variance='model' is invalid for it.")
    if not path.exists():
        raise DataError(f"data file {str(path)!r} does not exist.")
    if path.is_dir():
        check_dataset_directory(path)
    eng = engine_for(engine, path, memory_limit, threads)
    try:
        return _fit(eng, path, formula, treatment, family, names, variances, cluster,
                    reference, conf_level, multiplicity, safe_formula, t0)
    finally:
        eng.close()


def _source_path(source: object, formula: object) -> Path:
    """The path of ``fit_file``'s source, or an error saying what ``fit_file`` reads."""
    if isinstance(source, str) and "~" in source and isinstance(formula, (str, Path)) and (
            "~" not in str(formula)):
        raise ArgumentError(f"fit_file() takes the file first and the formula second: "
                            f"fit_file({str(formula)!r}, {source!r}) (hr.fit takes the formula "
                            "first).")
    if not isinstance(source, (str, os.PathLike)):
        frame = hasattr(source, "columns") or isinstance(source, np.ndarray)
        raise ArgumentError(
            f"fit_file() reads Parquet or CSV files that need not fit in memory: source= is "
            f"the path of the file, got {_kind(source)}. "
            + ("For data already in memory use hr.fit(formula, data, strategy='joint'), the "
               "same analysis." if frame else "Give the path as text or a pathlib.Path."))
    if not isinstance(formula, str):
        raise ArgumentError(f"fit_file(source, formula): formula must be text such as "
                            f"'y ~ treat * (age + C(sex))', got {_kind(formula)}.")
    return Path(source)


def _kind(value: object) -> str:
    """'pandas DataFrame', 'numpy ndarray', 'int': what a wrong argument is."""
    module = type(value).__module__.split(".")[0]
    return short(value) if module == "builtins" else f"a {module} {type(value).__name__}"


def _fit(eng, path, formula, treatment, family, names, variances, cluster, reference,
         conf_level, multiplicity, safe_formula, t0):
    facts = scan(eng, formula, treatment, family, cluster, reference, safe_formula)
    t_scan = time.perf_counter() - t0
    design, dsql = design_sql(facts, cluster)
    passes = oc.Passes(eng, dsql)
    n, p = facts.n_complete, dsql.p
    free = primary_columns(design, facts.parsed.treatment)
    starts = oc.start_values(names, eng, dsql, n, facts.events / n, free)
    # the joint models, then the primary analyses y ~ treat + z (the overall row, as fit):
    # the joint design's columns of the treatment and the adjustment terms (the others fixed
    # at zero), on the rows complete in y, treatment and adjustment variables
    states = oc.model_states(names) + oc.model_states(names)
    for k, s in enumerate(states):
        primary = k >= len(names)
        s.b = starts[(s.name, "primary") if primary else s.name].copy()
        if primary:
            s.free, s.masked = free, False
            s.b[np.setdiff1d(np.arange(p), free)] = 0.0
    oc.iterate(passes, states)
    grouped = passes.run(oc.final_jobs(states, variances), group="cells", label="final")
    totals = [_sum(grouped, i) for i in range(len(states))]
    scores = {}
    if cluster is not None:
        rows = passes.run([Job(s.link, s.b, info=False, loglik=False, scores=True,
                               masked=s.masked, cols=s.free) for s in states], group="cluster",
                          label="cluster")
        for i in range(len(states)):
            scores[i] = np.array([r[1][i]["scores"] for r in rows])
    fitted = []
    for i, s in enumerate(states):
        var = variances[s.name]
        keep = np.arange(p) if s.free is None else s.free
        vcov = oc.covariance(s, var, totals[i], n, scores.get(i))
        undefined = None
        if var in ("HC2", "HC3"):
            undefined = np.zeros((len(keep), 0))
            if totals[i].get("leverage1", 0) > 0:
                job = oc.final_jobs([s], {s.name: var})[0]
                X = np.array(eng.query(leverage_rows_query(dsql, job, eng.dialect,
                                                           eng.source)), float)
                undefined = (job.bread @ X.T)[keep]
        fm = FittedModel(s.name, s.link, variance_label(var), s.b[keep], vcov,
                         oc.loglik_of(s.name, totals[i]["loglik"], n), True, n,
                         tuple(design.columns[j] for j in keep), s.passes + 1,
                         extra={"path": f"out-of-core ({eng.name})"}, undefined=undefined)
        inference = check_inference(None, family)
        fitted.append(replace(fm, inference=model_inference(fm.name, inference)))
    primary, fitted = fitted[len(names):], fitted[:len(names)]
    subs, means, counts = _groups(design, dsql, grouped, states)
    overall_counts = {None: _counts(grouped, [True] * len(grouped), len(states), "_all")}
    n_primary = overall_counts[None]["n"]
    _warn_excluded(facts, dsql.outer, n_primary)
    primary = [replace(fm, n=n_primary, loglik=oc.loglik_of(fm.name, totals[len(names) + i]
                                                            ["loglik"], n_primary))
               for i, fm in enumerate(primary)]
    means, primary_means = means[:len(names)], [
        Means(mm.m1, mm.g1[:, free], mm.m0, mm.g0[:, free]) for mm in means[len(names):]]
    sparse = sparse_cells(subs, counts, family)
    lr = _reduced_logliks(passes, fitted, design, facts)
    overall, sub_rows, test_rows, effect_rows, pair_rows = [], [], [], [], []
    for fm, mm in zip(fitted, means):
        sub_rows += _standardized(fm, subs, mm.take(slice(1, None)), counts, sparse, family,
                                  conf_level)
        test_rows += _tests(fm, design, facts, subs, sparse, family, mm.take(slice(1, None)),
                            lr.get(fm.label, {}))
        eff, pairs = _interaction_effects(fm, design, facts.parsed.treatment, subs,
                                          mm.take(slice(1, None)), sparse, family, conf_level)
        effect_rows += eff
        pair_rows += pairs
    sparse_all = sparse_cells([], overall_counts, family)
    for fm, mm in zip(primary, primary_means):
        overall += _standardized(fm, [None], mm.take([0]), overall_counts, sparse_all, family,
                                 conf_level)
    coef, cov = [], []
    for fm in fitted:
        coef += coefficient_rows(fm, conf_level)
        cov += covariance_rows(fm)
    t_sha = time.perf_counter()
    sha = source_sha256(path)  # one more read of the file
    t_sha = time.perf_counter() - t_sha
    seconds = time.perf_counter() - t0
    profile = _profile(facts, design)
    prep = SimpleNamespace(treatment_labels=facts.treatment_labels, exclusions=facts.exclusions,
                           n_input=facts.n_input, data_sha256=sha)
    model_rows = [_model_row(fm, fm.name, variances[fm.name], "", "") for fm in fitted]
    meta = {"outofcore": {"engine": eng.name, "passes": passes.count + 1,
                          "pass_seconds": [round(t, 3) for _, t in passes.log],
                          "scan_seconds": round(t_scan, 3), "seconds": round(seconds, 3),
                          "sha256_seconds": round(t_sha, 3),
                          "not_computed": ["conditional effects at profiles", "curves",
                                           "quarters of continuous modifiers", "RERI"]}}
    return HTEResult(
        formula=formula, family=family, outcome=facts.parsed.outcome,
        treatment=facts.parsed.treatment, exposure=None, conf_level=conf_level,
        multiplicity=multiplicity, overall=pd.DataFrame(overall),
        subgroups=pd.DataFrame(sub_rows, columns=None if sub_rows else ROW_COLUMNS),
        curves=pd.DataFrame(columns=ROW_COLUMNS),
        interactions=adjust_pvalues(pd.DataFrame(test_rows, columns=None if test_rows
                                                 else TEST_COLUMNS), multiplicity),
        additive=pd.DataFrame(), joint_effects=pd.DataFrame(),
        models=pd.DataFrame(model_rows),
        coefficients=pd.DataFrame(coef, columns=COEFFICIENT_COLUMNS),
        covariance=pd.DataFrame(cov, columns=["model", "term", "term2", "value"]),
        glance=pd.DataFrame([_glance(fm, facts, totals[i]) for i, fm in enumerate(fitted)],
                            columns=GLANCE_COLUMNS),
        interaction_effects=pd.DataFrame(effect_rows, columns=EFFECT_COLUMNS),
        subgroup_differences=pd.DataFrame(pair_rows, columns=EFFECT_COLUMNS),
        n_analysed=n, meta=meta, **provenance(facts.parsed, design, prep, profile))


def _warn_excluded(facts: FileFacts, outer: tuple, n_primary: int) -> None:
    """Rows excluded for missing values, as :func:`hte_report.fit` (``strategy="joint"``)
    warns of them: the primary (overall) analysis's (its variables ``outer``: outcome,
    treatment, adjustment), then the joint model's."""
    miss = dict(zip(facts.exclusions["variable"], facts.exclusions["n_missing"]))
    n_input = facts.n_input
    if n_primary < n_input:
        detail = _detail({c: miss.get(c, 0) for c in outer})
        warnings.warn(f"overall analysis (adjusted): {n_input - n_primary} of {n_input} rows "
                      f"excluded for missing values ({detail}).", MissingDataWarning,
                      stacklevel=5)  # the caller of fit_file
    if facts.n_complete < n_input:
        warnings.warn(f"joint model: {n_input - facts.n_complete} of {n_input} rows excluded "
                      f"for missing values ({_detail(miss)}).", MissingDataWarning,
                      stacklevel=5)  # the caller of fit_file


def _detail(miss: dict) -> str:
    return ", ".join(f"{c}: {int(n)}" for c, n in miss.items() if n)


def _sum(grouped, i: int) -> dict:
    """Job ``i``'s aggregates summed over the groups of a grouped pass."""
    out: dict = {}
    for _keys, recs in grouped:
        for k, v in recs[i].items():
            out[k] = out[k] + v if k in out else np.array(v, float)
    return out


def _groups(design, dsql, grouped, states):
    """Subgroups (levels of categorical modifiers), each model's Means (group 0: everyone)
    and the counts per arm, from the grouped last pass."""
    subs = []
    for m in design.modifiers:
        if m.kind == "categorical":
            for i, v in enumerate(design.levels[m.name].values):
                subs.append(Subgroup(m.name, str(v), np.zeros(0, bool), i))
    keys = list(dsql.keys)
    member = []  # per group: which result rows belong to it
    for s in [None] + subs:
        if s is None:
            member.append([True] * len(grouped))
        else:
            k = keys.index(s.modifier)
            member.append([str(_lvl(r[0][k])) == s.level for r in grouped])
    nj = len(states)
    counts = {None if s is None else (s.modifier, s.level): _counts(grouped, mask, nj)
              for s, mask in zip([None] + subs, member)}
    tcols = dsql.treatment_columns
    means = []
    for i, st in enumerate(states):
        n_key = "n" if st.masked else "n_all"
        m1, g1, m0, g0 = [], [], [], []
        for mask in member:
            rows = [r for r, ok in zip(grouped, mask) if ok]
            tot = sum(r[1][nj][n_key] for r in rows)
            m1.append(sum(r[1][i]["m1"] for r in rows) / tot)
            m0.append(sum(r[1][i]["m0"] for r in rows) / tot)
            g1.append(sum(r[1][i]["g1"] for r in rows) / tot)
            g0.append(sum(r[1][i]["g0"] for r in rows) / tot)
        g0 = np.nan_to_num(np.array(g0))  # columns a primary analysis does not use: NULL sums
        g0[:, tcols] = 0.0
        means.append(Means(np.array(m1), np.nan_to_num(np.array(g1)), np.array(m0), g0))
    return subs, means, counts


def _counts(grouped, mask, nj: int, suffix: str = "") -> dict:
    """Rows and events per arm over the result rows in ``mask`` (``suffix`` "_all": the
    primary analysis's rows)."""
    rows = [r for r, ok in zip(grouped, mask) if ok]
    tot = {a: [r[1][nj] for r in rows if r[0][-1] == a] for a in (1, 0)}
    n_t = sum(c["n" + suffix] for c in tot[1])
    n_c = sum(c["n" + suffix] for c in tot[0])
    return {"n": int(round(n_t + n_c)), "n_treated": int(round(n_t)),
            "n_control": int(round(n_c)),
            "events_treated": float(sum(c["events" + suffix] for c in tot[1])),
            "events_control": float(sum(c["events" + suffix] for c in tot[0]))}


def primary_columns(design, treatment: str) -> np.ndarray:
    """Columns of the primary analysis y ~ treat + z in the joint design: the intercept, the
    treatment's main effect and the adjustment terms (no modifier, no interaction)."""
    mods = {m.expr for m in design.modifiers}
    cols = [c for key, c in design.term_columns.items()
            if key == frozenset({treatment}) or (treatment not in key and not key & mods)]
    return np.sort(np.concatenate(cols)).astype(int)


def _lvl(v):
    if isinstance(v, float) and np.isfinite(v) and v == round(v):
        return int(v)
    return v


def _reduced_logliks(passes, fitted, design, facts) -> dict:
    """Per model and modifier, the full model's log-likelihood minus the reduced model's of
    a likelihood-ratio test (logit with model-based variance), all iterated together."""
    states, keys = [], []
    for fm in fitted:
        if not (MODELS[fm.name].likelihood and fm.variance == "model"):
            continue
        for m in design.modifiers:
            idx = design.interaction_columns(m, facts.parsed.treatment)
            free = np.setdiff1d(np.arange(len(fm.params)), idx)
            states.append(oc.State(fm.name, fm.link, oc.reduced_start(fm.params, fm.vcov, idx),
                                   free, ref=fm.params))
            keys.append((fm.label, m.name))
    if not states:
        return {}
    oc.iterate(passes, states)
    out: dict = {}
    for (label, m), st in zip(keys, states):
        out.setdefault(label, {})[m] = st.drop
    return out


def _tests(fm, design, facts, subs, sparse, family, means, lr: dict):
    """Wald, LR and equality tests per modifier, as ``estimation.glm`` reports them."""
    rows = []
    _, native_scale = _native(fm, family)
    for m in design.modifiers:
        idx = design.interaction_columns(m, facts.parsed.treatment)
        hit = any(k is not None and k[0] == m.name for k in sparse)
        broken = fm.link != "identity" and hit and m.kind == "categorical"
        note = "not estimable: a subgroup has zero events in an arm" if broken else ""
        stat, df, p = wald_test(fm.params[idx], fm.cov(np.eye(len(fm.params))[idx]), fm.t_df)
        note = note or _undefined(fm, stat)
        rows.append(_test_row(m.name, native_scale, "wald", stat, df, p, fm.label,
                              "coefficient-wald", note, fm.t_df))
        if m.name in lr:
            stat, df, p = lr_test(lr[m.name], 0.0, len(idx))  # 2 (ll_full - ll_reduced)
            rows.append(_test_row(m.name, native_scale, "lr", stat, df, p, fm.label,
                                  "likelihood-ratio", note))
        if m.kind == "categorical":
            rows += equality_rows(fm, m, subs, means, family, broken, note)
    return rows


def _profile(facts: FileFacts, design) -> dict:
    """Reference profile as ``fit`` reports it: means of continuous covariates, modes of
    categorical ones (over the complete rows)."""
    prof = {}
    for c in facts.parsed.variables:
        if c == facts.parsed.treatment:
            continue
        if c in facts.levels:
            cnt = facts.counts[c]
            prof[c] = facts.levels[c][int(np.argmax(cnt))]
        elif c in facts.ranges:
            prof[c] = facts.ranges[c][2]
    return prof


def _glance(fm: FittedModel, facts: FileFacts, sums: dict) -> dict:
    """Model statistics (as ``coefficients.glance_row``) from the passes' sums."""
    n, p = float(fm.n), len(fm.params)
    info = MODELS[fm.name]
    E = facts.events
    ybar = E / n
    with np.errstate(divide="ignore", invalid="ignore"):
        if info.family == "gaussian":
            deviance = float(sums["loglik"])
            null = facts.sum_y2 - E * E / n
            k = p + 1
        elif info.family == "binomial":
            deviance = -2.0 * fm.loglik
            null = -2.0 * (E * np.log(ybar) + (n - E) * np.log1p(-ybar)) if 0 < E < n else 0.0
            k = p
        else:  # modified Poisson of a 0/1 outcome: y log y = 0 and sum(y log mu) =
            # loglik + sum(mu), so the deviance is -2 (loglik + sum y)
            deviance = -2.0 * (fm.loglik + E)
            null = -2.0 * E * np.log(ybar) if E > 0 else 0.0
            k = p
    loglik = fm.loglik
    return {"model": fm.label, "family": info.family, "link": fm.link, "variance": fm.variance,
            "inference": fm.inference, "n": int(round(n)), "n_params": p, "df_null": n - 1,
            "df_residual": n - p, "loglik": float(loglik), "deviance": float(deviance),
            "null_deviance": float(null), "aic": float(-2 * loglik + 2 * k),
            "bic": float(-2 * loglik + np.log(n) * k), "converged": bool(fm.converged),
            "iterations": int(fm.iterations), "note": ""}
