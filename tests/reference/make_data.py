"""Export the reference data sets used by tests/reference/*.R as CSV files.

Regenerate (from the repository root):
    python tests/reference/make_data.py
then
    Rscript tests/reference/core_glm.R

Writes tests/reference/data/{rossi,thornton_hiv,nsw,randhie}.csv.
Floats are written with full precision (float_format='%.17g'); float32
columns are first cast to float64 so the written decimal is the exact value.
Missing values are written as empty fields.
"""
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parent / "data"


def _write(df: pd.DataFrame, name: str) -> None:
    df = df.copy()
    for col in df.columns:
        if df[col].dtype == np.float32:
            df[col] = df[col].astype(np.float64)
    df.to_csv(OUT / name, index=False, float_format="%.17g", na_rep="")
    print(f"{name}: {df.shape[0]} rows x {df.shape[1]} columns")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)

    from lifelines.datasets import load_rossi

    rossi = load_rossi()
    assert rossi.shape[0] == 432
    _write(rossi, "rossi.csv")
    from lifelines.datasets import load_gbsg2

    _write(load_gbsg2(), "gbsg2.csv")

    import causaldata.thornton_hiv as thornton_hiv

    hiv = thornton_hiv.load_pandas().data
    # causaldata 0.1.5 ships 4820 rows (the brief expected 4793); all rows are kept.
    _write(hiv, "thornton_hiv.csv")

    import causaldata.nsw_mixtape as nsw_mixtape

    nsw = nsw_mixtape.load_pandas().data.drop(columns=["data_id"])
    _write(nsw, "nsw.csv")

    import statsmodels.api as sm

    rand = sm.datasets.randhie.load_pandas().data
    rand = rand[["mdvis", "lncoins", "physlm", "disea", "hlthg"]].copy()
    rand["free"] = (rand["lncoins"] == 0).astype(int)
    _write(rand, "randhie.csv")


if __name__ == "__main__":
    main()
