"""Scikit-learn estimators the forest needs beyond sklearn's own (imported only when a forest
is fitted: sklearn is part of the optional ``ml`` extra)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class ConstantPropensity(ClassifierMixin, BaseEstimator):
    """A known, constant probability of treatment (a randomized trial's allocation ratio):
    ``predict_proba`` returns ``[1 - p, p]`` for every row, whatever the covariates."""

    def __init__(self, propensity: float = 0.5):
        self.propensity = propensity

    def fit(self, X, y, sample_weight=None):  # noqa: ARG002 - sklearn's signature
        self.classes_ = np.unique(np.asarray(y))
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict_proba(self, X):
        n = np.asarray(X).shape[0]
        p = float(self.propensity)
        return np.column_stack([np.full(n, 1 - p), np.full(n, p)])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)
