"""Exact IRLS whose sums come from the out-of-core passes (:mod:`hte_report.data.ooc_sql`).

All working models advance together: one pass (one ``SELECT SUM(...)``) gives every model
still iterating its X'WX and score X'(y - mu); Fisher scoring (Newton: the three binary
working models have canonical links) solves in numpy on the p x p sums for the step, so the
rounding of the sums (which differs between engines) is relative to the step, not to the
coefficients: at convergence the engines agree far below the step. Convergence is the fast
path's (:func:`hte_report.models.fast._tolerance`: a relative step of 1e-9) and then one more
pass, whose step removes what the rounding of the sums left (a step's relative error is that
rounding times the condition number), so no engine's result depends on where its iterations
started. Starting values come from a fit on a sample of about 50,000 complete rows, as the
fast path's, the same rows in every engine (:func:`~hte_report.data.ooc_sql.sample_query`), so
the engines also stop at the same pass.

The last pass, grouped by the categorical modifiers and the arm, gives at the returned estimate
the information, the log-likelihood, the sandwich meat (HC3/HC2 with leverages from the
previous pass's inverse information) and the means of mu(1), mu(0) with their gradients;
cluster score sums take one pass grouped by the cluster; likelihood-ratio tests' reduced models
(dropped coefficients fixed at zero) start from the full estimate moved to the constraint and
iterate together; their polishing pass (whose estimate is converged far below the tolerance)
also sums the per-row log-likelihood of the full model minus the reduced one's: the statistic
is a sum of small numbers, not the difference of two large sums.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import linalg

from hte_report.data.ooc_sql import DesignSQL, Job, pass_query, sample_query, unpack_symmetric
from hte_report.errors import ModelError
from hte_report.models.fast import Family, _tolerance, irls
from hte_report.spec.options import MODELS, Cluster

MAX_PASSES = 100
#: Rows of the sample whose fit gives the passes their starting values.
SAMPLE_ROWS = 50_000


@dataclass
class State:
    """One model's iteration: coefficients, the last pass's sums, convergence."""

    name: str
    link: str
    b: np.ndarray
    free: np.ndarray | None = None  # reduced model: free columns
    masked: bool = True  # the joint model's rows (False: the primary analysis's rows)
    tol: float = 1e-9
    passes: int = 0
    small: bool = False  # the last step was within tolerance: one more pass polishes it
    converged: bool = False
    sums: dict = field(default_factory=dict)
    ref: np.ndarray | None = None  # a reduced model's full model (coefficients)
    drop: float = np.nan  # the full model's log-likelihood minus this one's, at the last pass


class Passes:
    """Runs passes on an engine and counts them (and their seconds)."""

    def __init__(self, engine, design: DesignSQL):
        self.engine, self.design = engine, design
        self.count = 0
        self.log: list[tuple[str, float]] = []

    def run(self, jobs: list[Job], group: str = "none", label: str = "iteration"):
        import time

        sql, layout = pass_query(self.design, jobs, self.engine.dialect, self.engine.source,
                                 group)
        t0 = time.perf_counter()
        rows = self.engine.query(sql)
        self.count += 1
        self.log.append((label, time.perf_counter() - t0))
        return [(row[:layout.n_keys], layout.unpack(row)) for row in rows]


def _solve(info: np.ndarray, rhs: np.ndarray, free) -> np.ndarray:
    """info^-1 rhs over the free columns (zeros elsewhere)."""
    b = np.zeros(len(rhs))
    keep = np.arange(len(rhs)) if free is None else free
    try:
        b[keep] = linalg.cho_solve(linalg.cho_factor(info[np.ix_(keep, keep)]),
                                   rhs[keep])
    except (linalg.LinAlgError, ValueError):
        raise ModelError("the information matrix of an out-of-core fit is singular: the "
                         "design is collinear among the complete rows (a level without "
                         "rows, a constant covariate); remove or merge it.") from None
    return b


def start_values(names, engine, design: DesignSQL, n_rows: int, ybar: float,
                 free: np.ndarray) -> dict:
    """Coefficients from fits on a sample (the fast path's subsample start) of the joint
    models and (key ``(name, "primary")``) of the primary analyses (columns ``free``); the
    intercept at the mean outcome when a fit fails."""
    out = {}
    icpt = next((j for j, fs in enumerate(design.columns) if not fs), None)
    sql = sample_query(design, engine.dialect, engine.source,
                       min(1.0, SAMPLE_ROWS / max(n_rows, 1)), 2 * SAMPLE_ROWS)
    sample = np.array(engine.query(sql), dtype=float).reshape(-1, design.p + 1)
    for name in names:
        info = MODELS[name]
        fam = Family(info.family, info.link)
        for key, cols in ((name, None), ((name, "primary"), free)):
            b = None
            if len(sample) > 2 * design.p and not fam.linear:
                try:
                    with np.errstate(all="ignore"):
                        b, _eta, conv, _it = irls(sample[:, :-1], sample[:, -1], info.family,
                                                  info.link, tol=1e-4, maxiter=50, free=cols)
                    if not (conv and np.all(np.isfinite(b))):
                        b = None
                except (np.linalg.LinAlgError, ValueError):
                    b = None
            if b is None:
                b = np.zeros(design.p)
                if icpt is not None and not fam.linear:
                    m = min(max(ybar, 1e-6), 1 - 1e-6)
                    b[icpt] = np.log(m / (1 - m)) if info.link == "logit" else np.log(m)
            out[key] = b
    return out


def iterate(passes: Passes, states: list[State]) -> None:
    """Fisher scoring for every state at once, one pass per iteration."""
    p = passes.design.p
    for _ in range(MAX_PASSES):
        live = [s for s in states if not s.converged]
        if not live:
            return
        # a reduced model's log-likelihood difference: in its last (polishing) pass
        res = passes.run([Job(s.link, s.b, loglik=False, masked=s.masked, cols=s.free,
                              ref=s.ref if s.small else None) for s in live])
        sums = res[0][1]
        for s, got in zip(live, sums):
            s.passes += 1
            s.drop = got.get("loglik_drop", np.nan)
            info = unpack_symmetric(got["info"], p)
            delta = _solve(info, got["score"], s.free)
            s.sums = {"info": info}
            b_new = s.b + delta
            if not np.all(np.isfinite(b_new)):
                raise ModelError(f"{s.name}: the out-of-core fit diverged (non-finite "
                                 "coefficients); check for separation.")
            step = np.max(np.abs(delta)) / (1 + np.max(np.abs(b_new)))
            s.b = b_new
            s.converged = s.small  # this pass polished a step within tolerance
            s.small = s.link == "identity" or step <= s.tol  # identity: one step solves
    for s in states:
        if not s.converged:
            raise ModelError(f"{s.name}: the out-of-core fit did not converge in "
                             f"{MAX_PASSES} passes; check for separation (a subgroup-arm "
                             "cell with no or only events).")


def model_states(names) -> list[State]:
    return [State(n, MODELS[n].link, np.zeros(0),
                  tol=_tolerance(Family(MODELS[n].family, MODELS[n].link), None))
            for n in names]


def _keep(state: State) -> np.ndarray:
    return np.arange(len(state.b)) if state.free is None else np.asarray(state.free)


def bread_of(state: State, info: np.ndarray) -> np.ndarray:
    """Inverse information over the free columns, embedded in p x p (zeros elsewhere)."""
    keep, p = _keep(state), len(state.b)
    out = np.zeros((p, p))
    out[np.ix_(keep, keep)] = linalg.cho_solve(linalg.cho_factor(info[np.ix_(keep, keep)]),
                                               np.eye(len(keep)))
    return out


def final_jobs(states: list[State], variances: dict) -> list[Job]:
    """The grouped last pass: information, log-likelihood, meat and means at the estimate."""
    jobs = []
    for s in states:
        var = variances[s.name]
        hat = var in ("HC2", "HC3")
        bread = bread_of(s, s.sums["info"]) if hat else None
        robust = var != "model" and not isinstance(var, Cluster)
        jobs.append(Job(s.link, s.b, meat=robust, bread=bread, means=True,
                        power=0.5 if var == "HC2" else 1.0, masked=s.masked, cols=s.free))
    return jobs


def covariance(state: State, var, sums: dict, n: int, cluster_scores=None):
    """The covariance of the free coefficients from the grouped last pass's summed
    aggregates (and, for a cluster variance, the G x p cluster score sums)."""
    p, keep = len(state.b), _keep(state)
    k = len(keep)
    info = unpack_symmetric(sums["info"], p)
    bread = bread_of(state, info)[np.ix_(keep, keep)]
    fam = MODELS[state.name].family
    if var == "model":
        sigma2 = sums["loglik"] / (n - k) if fam == "gaussian" else 1.0
        return bread * sigma2
    if isinstance(var, Cluster):
        S = cluster_scores[:, keep]
        G = S.shape[0]
        meat = S.T @ S * G / (G - 1) * (n - 1) / (n - k)
    else:
        meat = unpack_symmetric(sums["meat"], p)[np.ix_(keep, keep)]
        if var == "HC1":
            meat = meat * n / (n - k)
    return bread @ meat @ bread


def loglik_of(name: str, terms: float, n: int) -> float:
    """Log-likelihood from summed terms (gaussian: the RSS; a 0/1 outcome has log y! = 0)."""
    if MODELS[name].family == "gaussian":
        return -0.5 * n * (np.log(2 * np.pi * terms / n) + 1)
    return float(terms)


def reduced_start(b: np.ndarray, V: np.ndarray, idx) -> np.ndarray:
    """The full estimate moved to the constraint b[idx] = 0 along the model-based covariance
    (one-step approximation of the reduced fit)."""
    idx = np.asarray(idx)
    out = b - V[:, idx] @ np.linalg.solve(V[np.ix_(idx, idx)], b[idx])
    out[idx] = 0.0
    return out
