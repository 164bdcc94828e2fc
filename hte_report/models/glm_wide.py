""":func:`~hte_report.models.glm.fit_glm` on a split design (many-level adjustment factors):
the same checks, rescaling, reduced models and :class:`FittedModel` as the dense paths, the
fit itself by :func:`hte_report.models.wide.fit_wide`."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hte_report.design.wide import Blocks, SplitMatrix
from hte_report.errors import ModelError
from hte_report.models.glm import SCALE_BITS, FitFailure, FittedModel, _check_range, start_values
from hte_report.models.wide import Separation, fit_wide
from hte_report.spec.options import MODELS, Cluster, variance_label


def fit_split(name, X: SplitMatrix, y, columns, variance, exposure=None, groups=None,
              start=None, cells=None, drop=()) -> FittedModel:
    """Fit on a split design. Dense columns on extreme scales are rescaled by powers of two
    (exact), as :func:`~hte_report.models.glm.fit_glm` does; ``drop``: dense columns left out
    (a likelihood-ratio test's reduced model: log-likelihood only, vcov NaN)."""
    info = MODELS[name]
    if isinstance(variance, Cluster) and groups is None:
        raise ModelError("cluster variance requested but no cluster groups given.")
    if info.robust_only and variance == "model" and not drop:
        raise ModelError(f"{name} needs a robust variance (Zou 2004); use variance='HC0'.")
    D = X.dense
    step = max(1, D.shape[0] // 4096)
    Ds = D[::step]
    w = None if cells is None else cells.cnt[::step]
    ms = np.einsum("ij,ij->j", Ds, Ds) if w is None else np.einsum("ij,ij,i->j", Ds, Ds, w)
    rms = np.sqrt(ms / (Ds.shape[0] if w is None else w.sum()))
    with np.errstate(divide="ignore"):
        bits = np.where(rms > 0, np.round(np.log2(np.where(rms > 0, rms, 1.0))), 0.0)
    scale = np.exp2(np.where(np.abs(bits) > SCALE_BITS, bits, 0.0))
    keep = np.setdiff1d(np.arange(X.p), drop)
    sk = scale[keep]
    Xf = X.with_dense(D[:, keep] / sk if np.any(scale != 1) else D[:, keep]) if (
        len(drop) or np.any(scale != 1)) else X
    full = np.concatenate([sk, np.ones(X.shape[1] - X.p)])
    if start is not None:
        start = np.delete(np.asarray(start, float), drop) * full
    try:
        b, V, ll, conv, it, U, blocks = fit_wide(name, Xf, y, None if len(drop) else variance,
                                                 exposure, groups, start, cells)
    except Separation as exc:
        raise FitFailure(_separation_message(exc, name, X, columns)) from None
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise FitFailure(f"{name} failed: {exc}") from None
    if not conv or not np.all(np.isfinite(b)) or not (len(drop) or np.all(np.isfinite(V))):
        raise FitFailure(f"{name} did not converge")
    eta = Xf @ b
    if exposure is not None:
        eta = eta * exposure if info.link == "identity" else eta + np.log(exposure)
    mu = FittedModel(name, info.link, "", b, V, ll, conv, len(y), ()).inverse_link(eta)[0]
    _check_range(name, mu)
    extra = {"path": "wide"}
    if blocks is not None:  # the information on the user's scale (reduced-model starts)
        extra["info"] = Blocks(blocks.A * np.outer(sk, sk), blocks.B * sk[:, None], blocks.C)
    n = len(y) if cells is None else int(round(cells.cnt.sum()))
    if np.any(full != 1):  # back to the user's scale, in place (V is (p + K)^2)
        V /= full
        V /= full[:, None]
    fm = FittedModel(name=name, link=info.link, variance=variance_label(variance),
                     params=b / full, vcov=V, loglik=ll, converged=True,
                     n=n, columns=tuple(columns), iterations=it, extra=extra,
                     undefined=None if U is None else U / full[:, None])
    return fm


def _separation_message(exc: Separation, name: str, X: SplitMatrix, columns) -> str:
    _text, bad, j = exc.args
    off = X.offsets[j]
    names = [str(columns[off + c - 1]) if c else "the reference level" for c in bad[:5]]
    factor = str(columns[off]).split("[")[0]
    return (f"{len(bad)} level(s) of {factor} ({', '.join(names)}"
            f"{', ...' if len(bad) > 5 else ''}) have no events or only events, so their "
            f"coefficients in the {name} model are infinite (separation). Merge rare levels "
            "(e.g. into 'other'), adjust for a coarser grouping, or use a linear (RD) model")


def reduced_start_split(fm: FittedModel, drop, X: SplitMatrix, y, expo) -> np.ndarray | None:
    """:func:`~hte_report.models.glm.reduced_start` for a split design: the one-step move to
    the constraint through the information blocks (canonical links), else the usual start."""
    drop = np.asarray(drop, dtype=int)
    P = len(fm.params)
    keep = np.setdiff1d(np.arange(P), drop)
    b = np.zeros(P)
    info = fm.extra.get("info")
    if fm.name not in ("logit", "poisson") or info is None:
        start = start_values(fm.name, X.without(drop), y, expo)
        if start is None:
            return None
        b[keep] = start
        return b
    kd = np.setdiff1d(np.arange(X.p), drop)
    bd = fm.params[drop]
    cross = np.concatenate([info.A[np.ix_(kd, drop)] @ bd, info.B[drop].T @ bd])
    b = fm.params.copy()
    b[keep] += info.drop_dense(drop).solve(cross)
    b[drop] = 0.0
    return b


def with_blocks(fm: FittedModel) -> FittedModel:
    """``fm`` without its information blocks (for storage)."""
    return replace(fm, extra={k: v for k, v in fm.extra.items() if k != "info"})
