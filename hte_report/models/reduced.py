"""Likelihood-ratio reduced models of one fitted canonical-link GLM, solved together.

A full analysis tests each modifier's interaction (and all of them jointly) by likelihood
ratio: one reduced model per test. Fitted one by one they cost two or three full passes over
the data each; here all of them advance together in thin passes (issue 21).
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from hte_report.design.arms import ArmDesign
from hte_report.models.fast import BLOCK, Family, _binary, _loglik, accumulate, one_blas_thread
from hte_report.spec.options import MODELS

#: A reduced model is converged when the log-likelihood still to gain from its next step
#: (half the score times the step) is below this: its log-likelihood, evaluated at the current
#: estimate, is then exact to ~1e-10 (an LR statistic to ~2e-10, absolute).
REDUCED_GAIN_TOL = 1e-10
REDUCED_MAX_PASSES = 40


def reduced_logliks(name, X, y, params, info, drops, exposure=None):
    """Log-likelihoods of the reduced models of several likelihood-ratio tests of one fitted
    canonical-link model (logit, Poisson), solved together: each reduced model fixes the
    columns ``drops[k]`` at zero.

    Chord iterations: every reduced model starts from the full estimate moved to its
    constraint along the full model's information ``info`` (the one-step approximation, as
    :func:`hte_report.models.glm.reduced_start`) and steps with that information's free block
    as a fixed matrix, so one pass over the data advances all of them with two thin products
    (``X B`` and ``X' R``, B holding one column per reduced model) instead of one ``X'WX`` per
    model and pass. The convergence rate is the relative difference between the full and the
    reduced information (small when the dropped coefficients are), typically 3 to 5 passes for
    all reduced models together where separate Fisher-scoring fits need 2 to 3 passes each.
    A model is converged when the log-likelihood its next step would still gain (a quadratic
    form in its score) is below :data:`REDUCED_GAIN_TOL`; its log-likelihood is the one
    evaluated in that pass, at its current estimate, so it is exact.

    Returns one log-likelihood per reduced model (with the constant of :func:`_loglik`), or
    None for a model that did not converge (the caller refits it on its own)."""
    minfo = MODELS[name]
    fam = Family(minfo.family, minfo.link)
    if not fam.canonical or fam.linear:
        raise ValueError("reduced_logliks needs a canonical non-Gaussian link")
    n, p = X.shape
    off = np.log(exposure) if exposure is not None else None
    info = np.asarray(info, float)
    K = len(drops)
    B = np.zeros((p, K))
    chol, frees = [], []
    for k, drop in enumerate(drops):
        drop = np.asarray(drop, int)
        free = np.setdiff1d(np.arange(p), drop)
        H = info[np.ix_(free, free)]
        d = np.sqrt(np.diag(H))  # equilibrated: columns on any scale factor alike
        chol.append((linalg.cho_factor(H / np.outer(d, d)), d))
        frees.append(free)
        b = np.array(params, float)
        b[free] += _chol_solve(chol[-1], info[np.ix_(free, drop)] @ b[drop])
        b[drop] = 0.0
        B[:, k] = b
    binary = _binary(fam, y)
    out: list = [None] * K
    active = np.arange(K)
    with one_blas_thread(), np.errstate(all="ignore"):
        for it in range(REDUCED_MAX_PASSES):
            Ba = B[:, active]
            # the first pass, from the one-step start, is not the last (in practice): it
            # skips the log-likelihood (a logarithm per row and model) and every model steps
            ll = it > 0
            if isinstance(X, ArmDesign):
                S, LL = _arm_sums(X, y, fam, Ba, off, binary, ll)
            else:
                S, LL = _sums(X, y, fam, Ba, off, binary, ll)
            keep = []
            for j, k in enumerate(active):
                free = frees[k]
                step = _chol_solve(chol[k], S[free, j])
                gain = 0.5 * float(S[free, j] @ step)
                if not (np.isfinite(gain) and np.isfinite(LL[j])):
                    continue  # drifting: the caller refits it on its own
                if gain <= REDUCED_GAIN_TOL and ll:
                    out[k] = _loglik(fam, float(LL[j]), y, n, len(free))
                    continue
                B[free, k] += step
                keep.append(k)
            active = np.array(keep, int)
            if not len(active):
                break
    return out


def _loglik_sums(fam, yb, E, mu, binary) -> np.ndarray:
    """Log-likelihood terms of a block, summed per column of linear predictors ``E``
    (``mu`` is overwritten)."""
    if fam.family == "poisson":  # np.dot: it releases the GIL (passes run in threads)
        return np.dot(yb, E) - mu.sum(0)
    if binary:  # log(mu) where y = 1, log(1 - mu) where y = 0: in place, no temporaries
        np.subtract(1.0, mu, out=mu, where=(yb == 0)[:, None])
        return np.log(mu, out=mu).sum(0)
    return np.dot(yb, np.log(mu)) + np.dot(1 - yb, np.log1p(-mu))


def _sums(X, y, fam, B, off, binary, loglik=True):
    """Score ``X'(y - mu)`` and log-likelihood of each column of coefficients ``B`` (zero
    without ``loglik``)."""
    S = np.zeros(B.shape)
    LL = np.zeros(B.shape[1])
    for s in range(0, X.shape[0], BLOCK):
        Xb, yb = X[s:s + BLOCK], y[s:s + BLOCK]
        E = Xb @ B
        if off is not None:
            E += off[s:s + BLOCK, None]
        mu = fam.mean_only(E)
        S += Xb.T @ (yb[:, None] - mu)
        if loglik:
            LL += _loglik_sums(fam, yb, E, mu, binary)
    return S, LL


def _arm_sums(X: ArmDesign, y, fam, B, off, binary, loglik=True):
    """:func:`_sums` on a design held by arm (see :class:`~hte_report.design.arms.ArmBlock`),
    over the fixed block ranges of :meth:`~hte_report.design.arms.ArmDesign.map_blocks`."""
    c0, c1 = X.coefficients(B)
    ya, oa = X.arranged(y), X.arranged(off)

    def part(blocks):
        S0 = S1 = None
        LL = np.zeros(B.shape[1])
        for blk in blocks:
            yb = ya[blk.span]
            E = blk.eta(c0, c1)
            if oa is not None:
                E += oa[blk.span, None]
            mu = fam.mean_only(E)
            a0, a1 = blk.cross(yb[:, None] - mu)
            S0, S1 = accumulate(S0, a0), accumulate(S1, a1)
            if loglik:
                LL += _loglik_sums(fam, yb, E, mu, binary)
        return S0, S1, LL

    S0 = S1 = None
    LL = np.zeros(B.shape[1])
    for a0, a1, ll in X.map_blocks(part):  # in range order
        S0, S1 = accumulate(S0, a0), accumulate(S1, a1)
        LL += ll
    return X.lift_vectors(S0, S1), LL


def _chol_solve(factor, rhs):
    """Solve with an equilibrated Cholesky factor ``(cho_factor(D^-1 H D^-1), d)``."""
    cf, d = factor
    return linalg.cho_solve(cf, rhs / d) / d
