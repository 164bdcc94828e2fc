"""Derive small ADaM-style data sets (ADSL-like variables merged into an ADTTE) from the public
ACTG 320 data (../actg320/actg320.csv) and write them as SAS transport (ADTTE.xpt).

This is a demonstration of ADaM conventions, not the sponsor's ADaM: one row per subject and
parameter (PARAMCD AIDSDTH = AIDS-defining event or death, DTH = death), AVAL in days, CNSR
(1 = censored, 0 = event), treatment as text (TRT01P), population flags ITTFL / SAFFL (every
subject randomized; SAFFL 'N' is not used by the plan), character SEX and IVDRUG with blanks
for unknown values, and variable labels. Run from the repository root:

    python3 examples/actg320_adam/make_adam.py
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat

HERE = Path(__file__).parent
src = pd.read_csv(HERE.parent / "actg320" / "actg320.csv")

adsl = pd.DataFrame({
    "STUDYID": "ACTG320",
    "USUBJID": [f"ACTG320-{i + 1:04d}" for i in range(len(src))],
    "TRT01P": np.where(src.tx == 1, "IDV+ZDV+3TC", "ZDV+3TC"),
    "TRT01PN": src.tx.astype(float),
    "ITTFL": "Y",
    "SAFFL": "Y",
    "AGE": src.age.astype(float),
    "SEX": np.where(src.sex == 1, "M", "F"),
    "CD4BL": src.cd4.astype(float),
    "KARNOF": src.karnof.astype(float),
    "IVDRUG": src.ivdrug.map({1: "NEVER", 2: "CURRENT", 3: "PREVIOUS"}).fillna(""),
    "STRATA": np.where(src.strat2 == 0, "CD4<=50", "CD4>50"),
})
aids = adsl.assign(PARAMCD="AIDSDTH", PARAM="Time to AIDS-defining event or death (days)",
                   AVAL=src.time.astype(float), CNSR=(1 - src.censor).astype(float))
death = adsl.assign(PARAMCD="DTH", PARAM="Time to death (days)",
                    AVAL=src.time_d.astype(float), CNSR=(1 - src.censor_d).astype(float))
adtte = pd.concat([aids, death], ignore_index=True)
labels = {"STUDYID": "Study Identifier", "USUBJID": "Unique Subject Identifier",
          "TRT01P": "Planned Treatment for Period 01", "TRT01PN": "Planned Treatment (N)",
          "ITTFL": "Intent-To-Treat Population Flag", "SAFFL": "Safety Population Flag",
          "AGE": "Age (years)", "SEX": "Sex", "CD4BL": "Baseline CD4 count (cells/mm3)",
          "KARNOF": "Karnofsky score", "IVDRUG": "Injection drug use",
          "STRATA": "Randomization stratum", "PARAMCD": "Parameter Code",
          "PARAM": "Parameter", "AVAL": "Analysis Value", "CNSR": "Censor"}
pyreadstat.write_xport(adtte, str(HERE / "adtte.xpt"), file_format_version=5,
                       table_name="ADTTE", column_labels=[labels[c] for c in adtte.columns])
print(f"wrote {HERE / 'adtte.xpt'}: {len(adtte)} rows, {adtte.USUBJID.nunique()} subjects")
