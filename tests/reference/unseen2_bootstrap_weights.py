"""Write tests/reference/data/unseen2_boot_weights.csv: the frequency weights of the resampling
design of ``hte_report.bootstrap(..., B=40, seed=7, jackknife_groups=8)`` on the 111 rows of
data/unseen2_respiratory.csv, one column per sample (r1..r40: replicates, j1..j8: the grouped
jackknife samples without group k), written from the documented scheme (every replicate its
own child of ``SeedSequence(seed)``; its counts are those of n indices drawn with
``Generator.integers``; jackknife groups ``permutation(n) % groups`` from ``SeedSequence([seed,
1])``). tests/reference/unseen2_bootstrap.R refits every sample on these weights in R, and
tests/test_reference_unseen2.py checks that the package drew the same ones.

Run from the repository root: python tests/reference/unseen2_bootstrap_weights.py
"""

from pathlib import Path

import numpy as np
import pandas as pd

B, SEED, GROUPS = 40, 7, 8


def weights(n: int) -> pd.DataFrame:
    cols = {}
    for b, child in enumerate(np.random.SeedSequence(SEED).spawn(B)):
        rng = np.random.default_rng(child)
        cols[f"r{b + 1}"] = np.bincount(rng.integers(0, n, n), minlength=n)
    member = np.random.default_rng(np.random.SeedSequence([SEED, 1])).permutation(n) % GROUPS
    for k in range(GROUPS):
        cols[f"j{k + 1}"] = (member != k).astype(int)
    return pd.DataFrame(cols)


if __name__ == "__main__":
    ref = Path(__file__).parent
    n = len(pd.read_csv(ref / "data" / "unseen2_respiratory.csv"))
    weights(n).to_csv(ref / "data" / "unseen2_boot_weights.csv", index=False)
