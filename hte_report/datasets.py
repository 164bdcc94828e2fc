"""Real randomized-trial data sets shipped with the package (small, public).

``load_rossi``: Rossi, Berk & Lenihan (1980), *Money, Work and Crime*: 432 prisoners released
from Maryland state prisons, randomized to financial aid (``fin`` = 1) or not, followed for one
year. ``arrest`` = re-arrested during follow-up, ``week`` = week of arrest or censoring (52).
Copied from the lifelines package (MIT licence; the data are public, as in R's ``carData::Rossi``).
"""

from __future__ import annotations

from importlib import resources

import pandas as pd


def load_rossi() -> pd.DataFrame:
    """The Rossi recidivism experiment (432 rows: week, arrest, fin, age, race, wexp, mar, paro,
    prio)."""
    with resources.files("hte_report._datasets").joinpath("rossi.csv").open("rb") as fh:
        return pd.read_csv(fh)
