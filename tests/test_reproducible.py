"""Same plan + same data + same version give byte-identical HTML and PDF: no wall-clock time,
no random SVG ids, no output path in the bytes."""

import hashlib
import re
import shutil
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader

from hte_report.errors import HTEReportError
from hte_report.report.content import report_date
from hte_report.report.model import Para, Report, Section
from hte_report.report.render import render
from hte_report.report.typst import compile_pdf, render_typst, write_typst_project

EXAMPLE = Path(__file__).parents[1] / "examples" / "rossi"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def two_renders(tmp_path_factory):
    """The locked example rendered twice, into directories of different names and depths."""
    root = tmp_path_factory.mktemp("repro")
    shutil.copy(EXAMPLE / "plan.yaml", root / "plan.yaml")
    shutil.copy(EXAMPLE / "plan.yaml.lock.json", root / "plan.yaml.lock.json")
    outs = []
    with warnings.catch_warnings(), pytest.MonkeyPatch.context() as mp:
        warnings.simplefilter("ignore")
        mp.delenv("SOURCE_DATE_EPOCH", raising=False)
        for out, plan in ((root / "a", EXAMPLE / "plan.yaml"),
                          (root / "deeper" / "b c", root / "plan.yaml")):
            outs.append(render(plan, EXAMPLE / "rossi.csv", out=out, engine="builtin"))
    return outs


def test_two_renders_are_byte_identical(two_renders):
    a, b = two_renders
    for fmt in ("html", "pdf"):
        assert _sha(a[fmt]) == _sha(b[fmt]), fmt
        assert str(a[fmt].parent) not in a[fmt].read_bytes().decode("latin-1")


def test_report_date_comes_from_the_lock(two_renders):
    import json

    lock = Path(__file__).parents[1] / "examples" / "rossi" / "plan.yaml.lock.json"
    when = datetime.strptime(json.loads(lock.read_text())["locked_at"],
                             "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    html = two_renders[0]["html"].read_text()
    assert f"<th>Date</th><td>{when:%Y-%m-%d}</td>" in html
    pdf = two_renders[0]["pdf"].read_bytes()
    assert f"/CreationDate(D:{when:%Y%m%d%H%M%S}Z)".encode() in pdf
    assert f"/ModDate(D:{when:%Y%m%d%H%M%S}Z)".encode() in pdf
    info = PdfReader(two_renders[0]["pdf"]).metadata
    assert info.creation_date == when


def test_svg_ids_are_stable(two_renders):
    html = two_renders[0]["html"].read_text()
    assert len(re.findall(r"data:image/svg\+xml", html)) >= 3
    svg = (two_renders[0]["pdf"].parent / "typst" / "figures" / "forest.svg").read_text()
    assert "<dc:date>" not in svg and 'id="p' in svg  # clip paths, hashed with a fixed salt


class _Lock:
    locked_at = "2026-11-24T13:45:41Z"


class _Plan:
    def __init__(self, lock=None):
        self.lock = lock


def test_date_order(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    locked = _Plan(_Lock())
    assert report_date(locked) == ("2026-11-24",
                                   datetime(2026, 11, 24, 13, 45, 41, tzinfo=timezone.utc))
    shown, when = report_date(_Plan())
    assert shown.startswith("undated") and when is None
    assert report_date(locked, "2026-01-31") == (
        "2026-01-31", datetime(2026, 1, 31, tzinfo=timezone.utc))
    with pytest.raises(HTEReportError, match="date must be an ISO date"):
        report_date(locked, "31 Jan 2026")  # a date that is not ISO is refused, not guessed
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    assert report_date(locked) == ("2026-01-01", datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert report_date(_Plan())[0] == "2026-01-01"
    assert report_date(locked, "2025-12-31")[0] == "2025-12-31"  # an explicit date wins
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(HTEReportError, match="SOURCE_DATE_EPOCH must be whole seconds"):
        report_date(locked)


def _tiny(when) -> Report:
    meta = {"trial": "T", "date": "undated", "timestamp": when, "plan-hash": "0" * 64,
            "lock-time": "not locked", "lock-status": "unlocked", "data-hash": "1" * 64,
            "version": "0", "outcome": "y"}
    return Report("Tiny", meta, (Section("One", (Para("text"),), id="one"),))


def test_undated_pdf_has_no_date_and_is_stable(tmp_path):
    report = _tiny(None)
    assert "#set document(date: none)" in render_typst(report)
    pdfs = []
    for d in ("x", "y"):
        typ = write_typst_project(report, tmp_path / d / "typst")
        pdfs.append(compile_pdf(typ, tmp_path / d / "r.pdf").read_bytes())
    assert pdfs[0] == pdfs[1]
    assert b"/CreationDate" not in pdfs[0] and b"/ModDate" not in pdfs[0]


def test_dated_pdf_carries_the_report_date(tmp_path):
    when = datetime(2025, 3, 14, 9, 26, 53, tzinfo=timezone.utc)
    typ = write_typst_project(_tiny(when), tmp_path / "typst")
    pdf = compile_pdf(typ, tmp_path / "r.pdf").read_bytes()
    assert b"/CreationDate(D:20250314092653Z)" in pdf


def test_data_digest_by_blocks_equals_the_whole_frame_digest():
    """dataset_sha256 hashes blocks of rows; the digest is pandas' row hashes of the whole
    frame, whatever the dtypes (text, categoricals with few and very many categories,
    nullable integers, datetimes, booleans) and the factorizations given."""
    from hte_report.data.digest import HASH_ROWS, dataset_sha256
    from hte_report.data.levels import factorize

    def whole(frame, levels=None):
        h = hashlib.sha256()
        h.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
        if levels:
            frame = frame.copy(deep=False)
            for col, lv in levels.items():
                frame[col] = lv.categorical()
        h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        return h.hexdigest()

    rng = np.random.default_rng(0)
    n = 3 * HASH_ROWS + 5
    d = pd.DataFrame({
        "a": rng.normal(size=n), "b": rng.integers(0, 5, n), "c": rng.choice(["x", "y", None], n),
        "d": pd.Categorical(rng.choice(["u", "v"], n)),
        "e": pd.array(rng.integers(0, 3, n), dtype="Int64"), "f": rng.random(n) < 0.5,
        "g": pd.to_datetime(rng.integers(0, 10**9, n), unit="s"),
        "h": pd.Categorical([f"id{i}" for i in range(n)]), "i": [f"s{i % 1000}" for i in range(n)],
    })
    d.loc[3, "e"] = pd.NA
    d.loc[5, "a"] = np.nan
    given = {"c": factorize(d["c"]), "i": factorize(d["i"])}
    for frame, levels in ((d, None), (d, given), (d.head(0), None), (d.head(7), None),
                          (d.drop(columns="h"), None)):
        assert dataset_sha256(frame, levels) == whole(frame, levels)
