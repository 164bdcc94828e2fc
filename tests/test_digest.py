"""The data digest computed in a thread of its own (prepare.PendingDigest) and through the
unsorted text codes: the same SHA-256 as the whole-frame digest, for used and unused text
columns, missing values and categoricals, and errors raised where the digest is wanted."""

import numpy as np
import pandas as pd
import pytest

from hte_report.data import digest as digest_module
from hte_report.data.digest import PendingDigest, dataset_sha256
from hte_report.data.levels import raw_codes
from hte_report.data.prepare import prepare, same_data


def _frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame({
        "y": rng.integers(0, 2, n), "t": rng.integers(0, 2, n), "x": rng.normal(size=n),
        "g": pd.array(rng.choice(["a", "b", None, "c"], n), dtype="str"),
        "o": pd.Series(rng.choice(["u", "v", None], n), dtype=object),
        "k": pd.Categorical(rng.choice(["p", "q"], n)),
        "b": rng.integers(0, 2, n).astype(bool),
    })


@pytest.mark.parametrize("variables", [("t",), ("t", "x", "g"), ("t", "g", "o", "k")])
def test_threaded_digest_equals_whole_frame_digest(monkeypatch, variables):
    monkeypatch.setattr(digest_module, "DIGEST_THREAD_MIN_ROWS", 1000)
    d = _frame(5000)
    reference = dataset_sha256(d)  # no factorization given: every column hashed as it is
    with same_data():
        p = prepare(d, outcome="y", treatment="t", variables=variables, family="binomial")
        assert isinstance(p.digest, PendingDigest)
        assert p.data_sha256 == reference
        again = prepare(d, outcome="y", treatment="t", variables=variables,
                        family="binomial")
        assert again.data_sha256 == reference
    small = prepare(d.head(500), outcome="y", treatment="t", variables=variables,
                    family="binomial")
    assert isinstance(small.digest, str) and small.digest == dataset_sha256(d.head(500))


def test_raw_codes_digest_equals_levels_digest():
    d = _frame(3000)
    by_raw = dataset_sha256(d, {c: raw_codes(d[c]) for c in ("g", "o")})
    assert by_raw == dataset_sha256(d)


def test_digest_of_columns_with_python_objects_is_not_threaded(monkeypatch):
    monkeypatch.setattr(digest_module, "DIGEST_THREAD_MIN_ROWS", 10)
    d = _frame(200).assign(when=pd.Timestamp("2026-01-01"), obj=[(1,)] * 200)
    p = prepare(d, outcome="y", treatment="t", variables=("t", "x"), family="binomial")
    assert isinstance(p.digest, str)


def test_error_in_the_digest_thread_is_raised_where_the_digest_is_wanted(monkeypatch):
    def broken(frame, levels=None):
        raise ValueError("digest failed")

    monkeypatch.setattr(digest_module, "dataset_sha256", broken)
    pending = PendingDigest(pd.DataFrame({"a": [1, 2]}), None)
    with pytest.raises(ValueError, match="digest failed"):
        pending.result()
