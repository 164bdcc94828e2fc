import warnings

import matplotlib
import pytest

matplotlib.use("Agg")

from hte_report.datasets import load_rossi  # noqa: E402


@pytest.fixture(scope="session")
def rossi():
    return load_rossi()


@pytest.fixture(scope="session")
def rossi_result(rossi):
    import hte_report as hr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hr.fit("arrest ~ fin * (age + C(wexp) + prio) + race + mar + paro", rossi,
                      treatment="fin")
