"""What every part of the time-to-event analysis shares: the fitted context and the tidy rows
it produces (hazard ratios, survival and RMST differences, tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hte_report.design.build import Design
from hte_report.models.survival import CoxFit

COLUMNS = ["modifier", "level", "order", "value", "scale", "model", "method", "mu_treated",
           "mu_control", "estimate", "std_error", "conf_low", "conf_high", "statistic", "p_value",
           "n", "n_treated", "n_control", "events_treated", "events_control", "exposure_treated",
           "exposure_control", "horizon", "ph_p_value", "note"]


KM_MODEL = "kaplan-meier"


# ----------------------------------------------------------------------------- rows
@dataclass(frozen=True)
class Ctx:
    design: Design
    treatment: str
    keep: np.ndarray
    cox: CoxFit
    fm: object
    subs: list
    counts: dict
    sparse: dict
    conf_level: float
    t: np.ndarray
    time: np.ndarray
    event: np.ndarray
    strata: np.ndarray
    n_strata: int
    ties: str
    beyond: dict = field(default_factory=dict)  # (name, time) -> {subgroup key: reason}
    risk: object = None  # models.cox.RiskSets of (time, event, strata), shared by the fits


def row(base: dict, res: dict | None, i: int, counts: dict, note: str) -> dict:
    row = dict(base)
    for k in ("estimate", "std_error", "conf_low", "conf_high", "statistic", "p_value"):
        row[k] = float(res[k][i]) if (res is not None and not note) else np.nan
    row.update(counts)
    row["note"] = note
    return row


def frame_of(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    return df.reindex(columns=COLUMNS)


def test_row(modifier, scale, test, stat, df, p, model, method, note, horizon=np.nan):
    if note.startswith("not estimable"):
        stat, p = np.nan, np.nan
    return {"modifier": modifier, "scale": scale, "test": test, "statistic": float(stat),
            "df": int(df), "p_value": float(p), "model": model, "method": method, "note": note,
            "horizon": horizon}


def broken_note(ctx: Ctx, m) -> str:
    if m.kind == "categorical" and any(k[0] == m.name for k in ctx.sparse):
        return "not estimable: a subgroup has no events in an arm"
    return ""
