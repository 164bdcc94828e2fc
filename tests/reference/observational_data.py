"""Write tests/reference/data/nhefs.csv from the PyPI package causaldata (0.1.5):
``causaldata.nhefs_complete`` (the 1566 NHEFS participants with weight measured in 1982, as in
Hernán & Robins, *Causal Inference: What If*, ch. 12). Run from the repository root."""

from causaldata import nhefs_complete

COLS = ["seqn", "qsmk", "death", "wt82_71", "sex", "race", "age", "education",
        "smokeintensity", "smokeyrs", "exercise", "active", "wt71"]

d = nhefs_complete.load_pandas().data[COLS]
d = d.astype({c: "float64" for c in d.columns if d[c].dtype == "float32"})
d.to_csv("tests/reference/data/nhefs.csv", index=False, float_format="%.17g")
