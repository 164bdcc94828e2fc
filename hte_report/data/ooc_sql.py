"""One description of the out-of-core passes: SQL text that DuckDB and Spark both run.

An out-of-core fit (:func:`hte_report.estimation.outofcore.fit_file`) never holds the rows. Its
design columns are SQL expressions, each a product of *factors*: a numeric column, an indicator
of a level of a categorical column (``CAST(col = 'B' AS DOUBLE)``) or the treatment coded 0/1.
Every pass is one ``SELECT SUM(...)`` over the complete rows: per working model the linear
predictor, mean, IRLS weight and score residual are computed in SQL from the current
coefficients (numeric literals), and the aggregates are X'WX, the score X'(y - mu) and the
log-likelihood (or its difference from another model's, row by row), in the last pass also the
sandwich meat (HC0/HC1, HC3 via leverages ``w x'Bx``) and, grouped by the categorical modifiers
and the arm, the means of mu_i(1) and mu_i(0) and their gradients. Sums whose total is small
beside their terms (a likelihood-ratio statistic) or made of many like terms (the means) are
split in two (:func:`split_sum`), so the engines' different summation orders round them alike.
Only the engine that runs the text differs (:mod:`hte_report.data.ooc_engines`); both run the
query built here, so the engines cannot drift apart.

Supported links are those of the binary and continuous working models: identity (OLS), logit
and log (modified Poisson); all three are canonical for their family, so the score residual is
``y - mu`` and the IRLS weight ``d mu / d eta``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Dialect:
    """How an engine quotes identifiers and text literals (everything else is shared SQL)."""

    name: str
    quote: str  # identifier quote character

    def ident(self, name: str) -> str:
        q = self.quote
        return q + name.replace(q, q + q) + q

    def text(self, value: str) -> str:
        if self.name == "spark":  # Spark reads backslash escapes; '' would join two literals
            return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return "'" + value.replace("'", "''") + "'"

    def literal(self, value) -> str:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, (bool, np.bool_)):
            return "TRUE" if value else "FALSE"
        return num(value)


DUCKDB = Dialect("duckdb", '"')
SPARK = Dialect("spark", "`")


def num(v: float) -> str:
    """A double literal both engines read as DOUBLE at full precision (Spark reads a plain
    decimal such as 0.5 as DECIMAL; an exponent makes it a double)."""
    v = float(v)
    if not np.isfinite(v):
        raise ValueError(f"non-finite coefficient {v}")
    return f"({v:.17e})"


#: A factor of a design column: ("num", column), ("level", column, value) or ("treat",).
Factor = tuple


@dataclass(frozen=True)
class DesignSQL:
    """The design as SQL: every column a product of factors, over the complete rows."""

    columns: tuple[tuple[Factor, ...], ...]  # one product of factors per design column
    outcome: str
    treatment: str
    treated_value: object  # the treated arm's value; None: the column is already 0/1
    used: tuple[str, ...]  # every variable whose missing value excludes a row
    floats: frozenset = frozenset()  # used columns of floating type (NaN is missing)
    keys: tuple[str, ...] = ()  # categorical modifiers: the final pass groups by them
    cluster: str | None = None
    #: variables of the primary analysis y ~ treat + z (a subset of ``used``): its rows are
    #: those complete in these; jobs of the joint model are masked to the complete rows
    outer: tuple[str, ...] | None = None

    @property
    def p(self) -> int:
        return len(self.columns)

    def treatment_sql(self, d: Dialect) -> str:
        t = d.ident(self.treatment)
        if self.treated_value is None:
            return f"CAST({t} AS DOUBLE)"
        return f"CAST({t} = {d.literal(self.treated_value)} AS DOUBLE)"

    def factor_sql(self, f: Factor, d: Dialect, treated_one: bool) -> str | None:
        if f[0] == "treat":
            return None if treated_one else self.treatment_sql(d)
        if f[0] == "num":
            return f"CAST({d.ident(f[1])} AS DOUBLE)"
        return f"CAST({d.ident(f[1])} = {d.literal(f[2])} AS DOUBLE)"

    def column_sql(self, j: int, d: Dialect, treated_one: bool = False) -> str:
        parts = [s for s in (self.factor_sql(f, d, treated_one) for f in self.columns[j]) if s]
        return " * ".join(parts) if parts else num(1.0)

    def absent(self, col: str, d: Dialect) -> str:
        c = d.ident(col)
        return f"({c} IS NULL OR isnan({c}))" if col in self.floats else f"{c} IS NULL"

    def complete(self, d: Dialect, outer: bool = False) -> str:
        cols = self.outer if (outer and self.outer is not None) else self.used
        return " AND ".join(f"NOT {self.absent(c, d)}" for c in cols) or "TRUE"

    @property
    def treatment_columns(self) -> list[int]:
        return [j for j, fs in enumerate(self.columns) if any(f[0] == "treat" for f in fs)]


@dataclass
class Job:
    """What one working model asks of a pass, at coefficients ``b``."""

    link: str  # identity | logit | log
    b: np.ndarray
    info: bool = True  # X'WX and the score X'(y - mu)
    loglik: bool = True
    meat: bool = False  # sum of u^2 x x' (u the score residual, HC3-weighted with ``bread``)
    bread: np.ndarray | None = None  # HC2/HC3: inverse information, for the leverages
    power: float = 1.0  # HC3: u / (1 - h); HC2: u / sqrt(1 - h)
    means: bool = False  # means of mu(1), mu(0) and their gradients (final pass, grouped)
    scores: bool = False  # cluster score sums sum u x (a pass grouped by the cluster)
    masked: bool = True  # over the joint model's complete rows (False: the primary's rows)
    cols: np.ndarray | None = None  # free columns (a reduced or primary model): sums of these
    #: another model's coefficients: the sum of its per-row log-likelihood minus this job's
    #: (half a likelihood-ratio statistic: a sum of small numbers, not a difference of two
    #: large sums that engines round differently)
    ref: np.ndarray | None = None


@dataclass
class Layout:
    """Where each job's aggregates sit in a result row."""

    n_keys: int
    n_jobs: int
    slots: list[dict] = field(default_factory=list)  # per job: name -> where, shape
    width: int = 0

    def __post_init__(self):
        self.slots = [{} for _ in range(self.n_jobs + 1)]  # the last: rows and events

    def add(self, job: int, name: str, shape: tuple, scatter=None, parts: int = 1) -> None:
        """An aggregate of ``shape``; with ``scatter`` only those entries are summed (the
        others are zeros in the unpacked array); a scalar in ``parts`` sums that add up
        (:func:`split_sum`)."""
        size = len(scatter) if scatter is not None else (int(np.prod(shape)) if shape else parts)
        self.slots[job][name] = (self.width, shape, scatter, parts)
        self.width += size

    def unpack(self, row) -> list[dict]:
        """Per job a dict of its sums, then (last) the group's rows ``n``, ``events`` (joint
        model's rows) and ``n_all``, ``events_all`` (the primary analysis's rows)."""
        vals = np.array([np.nan if v is None else float(v) for v in row[self.n_keys:]])
        out = []
        for slots in self.slots:
            rec = {}
            for name, (start, shape, scatter, parts) in slots.items():
                if scatter is not None:
                    full = np.zeros(shape)
                    full[scatter] = vals[start:start + len(scatter)]
                    rec[name] = full
                elif shape:
                    rec[name] = vals[start:start + int(np.prod(shape))].reshape(shape)
                else:
                    rec[name] = float(np.sum(vals[start:start + parts]))
            out.append(rec)
        return out


def _eta(b: np.ndarray, prefix: str = "hx") -> str:
    terms = [f"{num(v)} * {prefix}{j}" for j, v in enumerate(b) if v != 0.0]
    return " + ".join(terms) or num(0.0)


def _mean(link: str, eta: str) -> str:
    """The mean of a linear predictor column, as SQL."""
    if link == "identity":
        return eta
    if link == "log":
        return f"exp({eta})"
    return f"1.0E0 / (1.0E0 + exp(-{eta}))"


def _dmu(link: str, mu: str) -> str:
    """d mu / d eta from the mean column."""
    if link == "identity":
        return "1.0E0"
    if link == "log":
        return mu
    return f"{mu} * (1.0E0 - {mu})"


def _loglik(link: str, eta: str, mu: str) -> str:
    """Per-row log-likelihood (Bernoulli for logit, Poisson kernel for log: y is 0/1 or a
    count whose log y! the caller adds; gaussian: the squared residual)."""
    if link == "logit":  # y eta - log(1 + e^eta), stable for any eta
        return (f"hy * {eta} - (greatest({eta}, 0.0E0) + ln(1.0E0 + exp(-abs({eta}))))")
    if link == "log":
        return f"hy * {eta} - {mu}"
    return f"(hy - {mu}) * (hy - {mu})"


#: The grid of :func:`split_sum`: sums of multiples of 2^-26 are exact, in any order, while
#: their absolute values add up to less than 2^27.
GRID = 2.0**26


def split_sum(col: str) -> list[str]:
    """A column as two whose sums add up to its sum free of the summation order's rounding
    (which differs between engines): the value rounded to the grid :data:`GRID` (an exact
    sum) and the remainder (at most half a grid step a row, so its rounding is negligible)."""
    hi = f"(floor({col} * {num(GRID)} + 0.5E0) / {num(GRID)})"
    return [hi, f"({col} - {hi})"]


def _quad(B: np.ndarray, prefix: str = "hx") -> str:
    """x'Bx as SQL (B symmetric)."""
    p = B.shape[0]
    terms = []
    for j in range(p):
        for k in range(j, p):
            c = B[j, k] * (1.0 if j == k else 2.0)
            if c != 0.0:
                terms.append(f"{num(c)} * {prefix}{j} * {prefix}{k}")
    return " + ".join(terms) or num(0.0)


def pass_query(design: DesignSQL, jobs: list[Job], d: Dialect, source: str,
               group: str = "none") -> tuple[str, Layout]:
    """The SQL of one pass for every job, and where its aggregates sit in the result rows.

    ``group``: "none" (one row), "cells" (one row per combination of the categorical
    modifiers and the arm: the final pass) or "cluster" (one row per cluster). Per job, the
    row-level factors (weight times column, working response, squared score) are columns of a
    projection, so each aggregate is the sum of one product; a job with ``cols`` sums only the
    products of those columns (the others come back as zeros)."""
    p = design.p
    base = [f"{design.column_sql(j, d)} AS hx{j}" for j in range(p)]
    if any(j.means for j in jobs):
        base += [f"{design.column_sql(j, d, treated_one=True)} AS hxt{j}" for j in range(p)]
    base.append(f"CAST({d.ident(design.outcome)} AS DOUBLE) AS hy")
    base.append(f"CASE WHEN {design.complete(d)} THEN 1.0E0 ELSE 0.0E0 END AS hc")
    keys: list[str] = []
    if group == "cells":
        keys = [f"hk{i}" for i in range(len(design.keys))] + ["ht"]
        base += [f"{d.ident(k)} AS hk{i}" for i, k in enumerate(design.keys)]
        base.append(f"{design.treatment_sql(d)} AS ht")
    elif group == "cluster":
        keys = ["hg"]
        base.append(f"{d.ident(design.cluster)} AS hg")
    tc = set(design.treatment_columns)
    # per job: eta, mu, d mu/d eta (and under treatment 1 / 0 for the means)
    lin, mid, der, prod = [], [], [], []
    for i, job in enumerate(jobs):
        lin.append(f"{_eta(job.b)} AS he{i}")
        if job.ref is not None:
            lin.append(f"{_eta(job.ref)} AS hf{i}")
        if job.means:
            b0 = np.where([j in tc for j in range(p)], 0.0, job.b)
            lin.append(f"{_eta(job.b, 'hxt')} AS he{i}_1")
            lin.append(f"{_eta(b0, 'hxt')} AS he{i}_0")
        if job.meat and job.bread is not None:
            lin.append(f"{_quad(job.bread)} AS hq{i}")
    for i, job in enumerate(jobs):
        mid.append(f"{_mean(job.link, f'he{i}')} AS hm{i}")
        der.append(f"{_dmu(job.link, f'hm{i}')} AS hd{i}")
        if job.means:
            for arm in ("1", "0"):
                mid.append(f"{_mean(job.link, f'he{i}_{arm}')} AS hm{i}_{arm}")
                der.append(f"{_dmu(job.link, f'hm{i}_{arm}')} AS hd{i}_{arm}")
    aggs: list[str] = []
    layout = Layout(len(keys), len(jobs))
    pairs_all = list(zip(*np.triu_indices(p)))
    position = {pair: k for k, pair in enumerate(pairs_all)}

    def add(job, name, exprs, shape, scatter=None, parts=1):
        layout.add(job, name, shape, scatter, parts)
        aggs.extend(f"SUM({e})" for e in exprs)

    add(len(jobs), "n", ["hc"], ())  # rows and events of the group (joint model)
    add(len(jobs), "events", ["hy * hc"], ())
    add(len(jobs), "n_all", ["1.0E0"], ())  # ... and of the primary analysis
    add(len(jobs), "events_all", ["hy"], ())
    for i, job in enumerate(jobs):
        cols = list(range(p)) if job.cols is None else [int(j) for j in job.cols]
        pairs = [(j, k) for j in cols for k in cols if j <= k]
        tri = (len(pairs_all),), [position[pr] for pr in pairs]
        vec = (p,), cols
        mask = " * hc" if job.masked else ""
        w = f"hd{i}"  # canonical links: IRLS weight = d mu / d eta, score residual = y - mu
        r = f"(hy - hm{i})"
        if job.info:
            prod += [f"{w}{mask} * hx{j} AS hw{i}_{j}" for j in cols]
            prod.append(f"{r}{mask} AS hz{i}")
            add(i, "info", [f"hw{i}_{j} * hx{k}" for j, k in pairs], *tri)
            add(i, "score", [f"hz{i} * hx{j}" for j in cols], *vec)
        if job.loglik:
            prod.append(f"({_loglik(job.link, f'he{i}', f'hm{i}')}){mask} AS hl{i}")
            add(i, "loglik", [f"hl{i}"], ())
        if job.ref is not None:
            ref = _loglik(job.link, f"hf{i}", _mean(job.link, f"hf{i}"))
            own = _loglik(job.link, f"he{i}", f"hm{i}")
            prod.append(f"(({ref}) - ({own})){mask} AS hlr{i}")
            add(i, "loglik_drop", split_sum(f"hlr{i}"), (), parts=2)
        u = r
        if job.meat and job.bread is not None:  # HC3: u / (1 - h), h = w x'Bx
            one_minus_h = f"(1.0E0 - {w} * hq{i})"
            scaled = (f"{r} / {one_minus_h}" if job.power == 1.0
                      else f"{r} / sqrt({one_minus_h})")
            # a leverage-1 row's weight is 0 here (its contribution is 0/0: the caller marks
            # the combinations that depend on it, as the fast path does)
            u = f"(CASE WHEN {one_minus_h} <= 1.0E-8 THEN 0.0E0 ELSE {scaled} END)"
            add(i, "leverage1", [f"(CASE WHEN {one_minus_h} <= 1.0E-8 THEN 1.0E0 ELSE 0.0E0 "
                                 f"END){mask}"], ())
        if job.meat:
            prod += [f"{u} * {u}{mask} * hx{j} AS hv{i}_{j}" for j in cols]
            add(i, "meat", [f"hv{i}_{j} * hx{k}" for j, k in pairs], *tri)
        if job.scores:
            prod.append(f"{u}{mask} AS hs{i}")
            add(i, "scores", [f"hs{i} * hx{j}" for j in cols], *vec)
        if job.means:
            for arm in ("1", "0"):
                prod += [f"hm{i}_{arm}{mask} AS hm{i}_{arm}c", f"hd{i}_{arm}{mask} AS hg{i}_{arm}"]
                add(i, f"m{arm}", split_sum(f"hm{i}_{arm}c"), (), parts=2)
                add(i, f"g{arm}", [f"hg{i}_{arm} * hxt{j}" for j in cols], *vec)
    select = ", ".join(keys + aggs)
    where = design.complete(d, outer=not all(j.masked for j in jobs))
    sql = (f"WITH hb AS (SELECT {', '.join(base)} FROM {source} WHERE {where}), "
           f"hl AS (SELECT *, {', '.join(lin)} FROM hb), "
           f"hn AS (SELECT *, {', '.join(mid)} FROM hl), "
           f"hr AS (SELECT *, {', '.join(der)} FROM hn), "
           f"hp AS (SELECT *, {', '.join(prod) or 'hc AS hnone'} FROM hr) "
           f"SELECT {select} FROM hp")
    if keys:
        sql += f" GROUP BY {', '.join(keys)}"
    return sql, layout


def unpack_symmetric(v: np.ndarray, p: int) -> np.ndarray:
    """The p x p symmetric matrix from its upper triangle (row-major, as the pass sums it)."""
    M = np.zeros((p, p))
    M[np.triu_indices(p)] = v
    return M + np.triu(M, 1).T


def sample_query(design: DesignSQL, d: Dialect, source: str, fraction: float,
                 limit: int) -> str:
    """Design columns and outcome of about ``fraction`` of the complete rows (at most
    ``limit``): the rows whose hash, the fractional part of a fixed linear combination of
    their values, is below ``fraction``. Plain double arithmetic, so every engine picks the
    same rows and the fits start from the same values (and stop at the same pass)."""
    cols = [f"{design.column_sql(j, d)} AS hx{j}" for j in range(design.p)]
    cols.append(f"CAST({d.ident(design.outcome)} AS DOUBLE) AS hy")
    names = [f"hx{j}" for j in range(design.p)] + ["hy"]
    mix = " + ".join(f"{num(_HASH * (j + 1) % 1.0 * 1000.0 + 1.0)} * {c}"
                     for j, c in enumerate(names))
    return (f"SELECT {', '.join(names)} FROM (SELECT *, {mix} AS hh FROM (SELECT "
            f"{', '.join(cols)} FROM {source} WHERE {design.complete(d)}) hs) hm "
            f"WHERE hh - floor(hh) < {num(fraction)} LIMIT {int(limit)}")


_HASH = 0.6180339887498949  # the golden ratio's fractional part: well spread multiples


def leverage_rows_query(design: DesignSQL, job: Job, d: Dialect, source: str,
                        limit: int = 1000) -> str:
    """Design rows with leverage 1 (HC2/HC3 undefined there), at most ``limit``."""
    dmu = _dmu(job.link, _mean(job.link, "he"))
    inner = (f"SELECT {', '.join(f'{design.column_sql(j, d)} AS hx{j}' for j in range(design.p))}"
             f" FROM {source} WHERE {design.complete(d, outer=not job.masked)}")
    xs = ", ".join(f"hx{j}" for j in range(design.p))
    return (f"SELECT {xs} FROM (SELECT *, {_eta(job.b)} AS he, {_quad(job.bread)} AS hq "
            f"FROM ({inner}) hi) hz WHERE {dmu} * hq >= 1.0E0 - 1.0E-8 LIMIT {limit}")
