"""How long a working-model fit will take, from the path it takes, and what the user is told
before a long one (issue 21): dense designs (statsmodels or blocked Fisher scoring) and split
designs (many-level adjustment factors fitted from their codes, ``models.wide``)."""

from __future__ import annotations

import warnings

from hte_report.design.build import Design
from hte_report.errors import ModelWarning

#: Cost model of one working-model fit, tests included (``fit_seconds``). Dense fits: about
#: n p^2 floating-point operations per pass at FLOPS (2 cores), statsmodels about 6 passes'
#: worth per iteration, PASSES_PER_MODEL passes per model. Split designs (many-level factors,
#: ``models.wide``): a pass bins the dense part by level, about WIDE_ROW_SECONDS per row and
#: dense column, WIDE_PASSES passes per model; the covariance (``models.wide_cov``, never a
#: (p + K)^2 matrix) costs about n p^2 operations (leverages) with one wide factor, and about
#: 2 (p + K)^3 with several (solves in their dense K x K cross-tabulation). Above SLOW_SECONDS
#: for all models the user is told first; a fit predicted to take PROGRESS_SECONDS or more is
#: announced as it starts.
FLOPS = 2e10
PASSES_PER_MODEL = 12
WIDE_ROW_SECONDS = 4e-9
WIDE_PASSES = 10
SLOW_SECONDS = 10.0
PROGRESS_SECONDS = 5.0


def fit_seconds(design: Design, path: str) -> float:
    """Predicted seconds for one working model on ``design`` by ``path``."""
    from hte_report.design.wide import SplitMatrix

    n, P = design.X.shape
    X = design.X
    if isinstance(X, SplitMatrix):
        K = P - X.p
        per_pass = (n * (X.p + 1) * len(X.sizes) * WIDE_ROW_SECONDS + X.p * X.p * K / FLOPS
                    + (K ** 3 / 3 / FLOPS if len(X.sizes) > 1 else 0.0))
        cov = 2.0 * P ** 3 if len(X.sizes) > 1 else (n + P) * X.p * X.p
        return per_pass * WIDE_PASSES + cov / FLOPS
    return n * P * P / FLOPS * (6 if path == "statsmodels" else 1) * PASSES_PER_MODEL


def warn_if_slow(design: Design, model_names, path: str) -> float:
    """Say before a long fit how long it will take, from the path it takes: a split design
    (many-level adjustment factors fitted from their codes) or a dense one (with the terms
    that make it wide). Returns the predicted seconds per model."""
    per_model = fit_seconds(design, path)
    eta = per_model * len(model_names)
    if eta < SLOW_SECONDS:
        return per_model
    n, p = design.X.shape
    if design.wide:
        factors = ", ".join(f"{w.expr} ({len(w.names) + 1} levels)" for w in design.wide)
        warnings.warn(
            f"{n} rows, {p} coefficients of which {p - design.X.p} for the many-level "
            f"factor(s) {factors}, fitted from their codes without dummy columns; fitting "
            f"{len(model_names)} model(s) will take about {eta:.0f} s.", ModelWarning,
            stacklevel=4)
        return per_model
    sizes = sorted(((len(cols), " & ".join(sorted(key))) for key, cols in
                    design.term_columns.items()), reverse=True)[:3]
    wide = ", ".join(f"{name} ({k} columns)" for k, name in sizes)
    warnings.warn(
        f"the design has {p} columns for {n} rows (widest terms: {wide}); fitting "
        f"{len(model_names)} model(s) will take about {eta:.0f} s. A many-level adjustment "
        "factor is usually better handled by stratification or a cluster/mixed model; merge "
        "rare levels to go faster.", ModelWarning, stacklevel=4)
    return per_model
