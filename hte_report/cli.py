"""The ``hte-report`` command: render, lock, check, benefit, quarto init.

Every failure ends in one line ``error: <what was wrong and what to do>`` on stderr and a
non-zero exit status, never in a Python traceback (set ``HTE_REPORT_DEBUG=1`` to see one).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from hte_report._version import __version__

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Pre-registered treatment-effect heterogeneity reports.")

ENCODING_HELP = ("Text encoding of a CSV/TSV or SAS data file, e.g. latin-1 or cp1252 "
                 "(default: UTF-8).")
PLAN_ENCODING_HELP = "Text encoding of the plan file (default: UTF-8)."


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hte-report {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool | None = typer.Option(None, "--version", callback=_version, is_eager=True,
                                           help="Print the version and exit."),
) -> None:
    """Pre-registered treatment-effect heterogeneity reports."""


def _fail(exc: Exception | str, code: int = 1) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=code)


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Turn every exception into ``error: <message>`` and exit status 1 (2 for a bug)."""
    from hte_report.errors import HTEReportError
    from hte_report.spec.formula import short

    try:
        yield
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except HTEReportError as exc:
        _fail(exc)
    except OSError as exc:  # a file that cannot be read or written
        what = f" {exc.filename!s}" if exc.filename else ""
        _fail(f"cannot access{what}: {exc.strerror or exc}.")
    except (ValueError, TypeError) as exc:
        if os.environ.get("HTE_REPORT_DEBUG"):
            raise
        _fail(short(str(exc), 500)[1:-1] or type(exc).__name__)
    except Exception as exc:  # noqa: BLE001 - the last resort: no traceback for users
        if os.environ.get("HTE_REPORT_DEBUG"):
            raise
        _fail(f"internal error ({type(exc).__name__}: {short(str(exc), 300)[1:-1]}). This is a "
              "bug in hte_report; please report it with the command you ran "
              "(HTE_REPORT_DEBUG=1 shows the traceback).", code=2)


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        _fail(f"--out {str(out)!r} is an existing file; give a directory for the report "
              "(it is created if it does not exist).")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                _fail(f"--out {str(out)!r} cannot be created: {str(parent)!r} is a file.")
            break


@app.command()
def render(
    plan: Path = typer.Argument(..., help="Analysis plan (YAML)."),
    data: Path = typer.Option(..., "--data", help="Data file (CSV, Parquet, SAS, Stata)."),
    to: str = typer.Option("html,pdf", "--to", help="Comma-separated formats: html, pdf."),
    out: Path = typer.Option(Path("out"), "--out", help="Output directory."),
    engine: str = typer.Option(
        "auto", "--engine", help="auto | builtin | quarto. auto: Quarto when it is on PATH with "
        "the [quarto] extra installed (falling back to built-in, with a warning, if it fails), "
        "else the built-in writers."),
    posthoc: str = typer.Option("", "--posthoc",
                                help="Comma-separated modifiers to analyse post hoc."),
    encoding: str | None = typer.Option(None, "--encoding", help=ENCODING_HELP),
    plan_encoding: str = typer.Option("utf-8", "--plan-encoding", help=PLAN_ENCODING_HELP),
    date: str | None = typer.Option(
        None, "--date", help="Report date (ISO, e.g. 2026-01-31). Default: SOURCE_DATE_EPOCH, "
        "else the lock record's time; never the clock, so renders are byte-identical."),
) -> None:
    """Fit the planned analysis on DATA and render the report."""
    import warnings

    from hte_report.errors import HTEReportWarning
    from hte_report.report.render import render as do_render

    formats = [f.strip() for f in to.split(",") if f.strip()]
    extra = [p.strip() for p in posthoc.split(",") if p.strip()]

    def say(msg: str) -> None:
        typer.echo(f"… {msg}", err=True)

    written: dict = {}
    with _clear_errors():
        from hte_report.analysis import read_data_file
        from hte_report.report.render import quarto_usable
        from hte_report.spec.plan import load_plan

        if not formats:
            _fail("--to names no format; use --to html, --to pdf or --to html,pdf.")
        _check_out(out)
        quarto = engine == "quarto" or (engine == "auto" and quarto_usable()
                                        and not extra)
        if quarto and (encoding or plan_encoding.lower().replace("-", "") != "utf8"):
            _fail("--encoding and --plan-encoding work with the built-in writers only; add "
                  "--engine builtin (or convert the files to UTF-8).")
        p = load_plan(plan, encoding=plan_encoding)  # clear errors before anything is fitted
        source = data
        if quarto:
            read_data_file(data)  # a missing, unreadable or non-UTF-8 file fails here
            the_plan = plan
        else:
            the_plan = p
            if encoding:
                source = read_data_file(data, encoding)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", HTEReportWarning)
            written = do_render(the_plan, source, to=formats, out=out, engine=engine,
                                posthoc=extra, date=date, progress=say)
        for w in caught:
            if issubclass(w.category, HTEReportWarning):
                typer.echo(f"warning: {w.message}", err=True)
    for fmt, path in written.items():
        typer.echo(f"{fmt}: {path}")


@app.command()
def lock(
    plan: Path = typer.Argument(..., help="Analysis plan (YAML) to lock."),
    statement: str = typer.Option("", "--statement", help='e.g. "locked before unblinding".'),
    force: bool = typer.Option(False, "--force", help="Re-lock an edited plan (a deviation)."),
    plan_encoding: str = typer.Option("utf-8", "--plan-encoding", help=PLAN_ENCODING_HELP),
) -> None:
    """Write PLAN.lock.json with the plan's SHA-256, a UTC timestamp and a record hash."""
    from hte_report.spec.plan import lock_path, lock_plan

    with _clear_errors():
        rec = lock_plan(plan, statement=statement, force=force, encoding=plan_encoding)
    typer.echo(f"locked {plan} sha256={rec.plan_sha256} at {rec.locked_at} -> {lock_path(plan)}")


@app.command()
def check(
    plan: Path = typer.Argument(..., help="Analysis plan (YAML)."),
    data: Path = typer.Option(..., "--data", help="Data file."),
    allow_modified: bool = typer.Option(
        False, "--allow-modified",
        help="Accept a plan edited after locking as a recorded deviation (exit 0)."),
    encoding: str | None = typer.Option(None, "--encoding", help=ENCODING_HELP),
    plan_encoding: str = typer.Option("utf-8", "--plan-encoding", help=PLAN_ENCODING_HELP),
) -> None:
    """Validate PLAN against DATA without fitting anything; verify the plan's lock.

    Exits non-zero when the plan (or its lock record) was edited after locking, unless
    --allow-modified accepts the edit as a deviation."""
    import warnings

    from hte_report.analysis import read_data_file
    from hte_report.errors import HTEReportWarning
    from hte_report.spec.plan import load_plan
    from hte_report.spec.plan_data import check_plan_against_data

    with _clear_errors():
        # warnings of reading the plan and the data too (printed as the check's, before an
        # error that stops it): 'warning: <message>', never a raw Python warning
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", HTEReportWarning)
            try:
                p = load_plan(plan, encoding=plan_encoding)
                frame = read_data_file(data, encoding)
                check_plan_against_data(p, frame)
            finally:
                for message in dict.fromkeys(str(w.message) for w in caught
                                             if issubclass(w.category, UserWarning)):
                    typer.echo(f"warning: {message}", err=True)
    problem = p.lock_problem()
    if problem and not allow_modified:
        _fail(f"{plan}: {problem}")
    if problem:
        typer.echo(f"warning: {problem} Accepted as a deviation (--allow-modified); the report "
                   "will say the plan was modified after locking.", err=True)
        if not p.raw.get("deviations"):
            typer.echo("warning: the plan lists no 'deviations'; record what was changed after "
                       "locking, and why.", err=True)
    note = p.lock_note()
    if note:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"ok: {plan} (sha256 {p.sha256[:16]}…, lock status {p.lock_status()}) matches "
               f"{data} ({len(frame)} rows); {len(p.modifiers)} pre-specified modifiers, "
               f"analysed {p.strategy} (overall: {p.overall_analysis} primary analysis).")


def _numbers(text: str, what: str) -> list[float]:
    import math

    out = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            out.append(float(part))
        except ValueError:
            hint = (" For percentages write the numbers and add --percent (5,10 --percent)."
                    if part.strip().endswith("%") else "")
            _fail(f"{what} must be numbers separated by commas, e.g. 0.05,0.1; got "
                  f"{part.strip()[:40]!r}.{hint}")
        if not math.isfinite(out[-1]):
            _fail(f"{what} must be finite numbers; got {part.strip()[:40]!r}.")
    return out


def _load_result(path: Path):
    """An HTEResult saved with ``result.to_json(path)``, with a clear error for anything else."""
    import json

    from hte_report.results.result import HTEResult
    from hte_report.spec.formula import short

    how = ("A result JSON is written in Python by hr.fit(...).to_json('result.json'); "
           "--result cannot read data or plan files.")
    if not path.exists():
        _fail(f"--result file {str(path)!r} does not exist. {how}")
    if path.is_dir():
        _fail(f"--result {str(path)!r} is a directory, not a result JSON file. {how}")
    limit = 500_000_000
    with open(path, "rb") as fh:  # read at most the limit: /dev/zero has size 0
        raw = fh.read(limit + 1)
    if len(raw) > limit:
        _fail(f"--result file {str(path)!r} is too large to be a result JSON. {how}")
    try:
        d = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        _fail(f"--result file {str(path)!r} is not a result JSON (it is not JSON: "
              f"{short(str(exc), 100)[1:-1]}). {how}")
    required = ("formula", "family", "treatment", "overall", "subgroups", "models")
    missing = [k for k in required if not isinstance(d, dict) or k not in d]
    if missing:
        _fail(f"--result file {str(path)!r} is JSON but not an hte_report result (it lacks "
              f"{', '.join(missing)}). {how}")
    try:
        return HTEResult.from_dict(d)
    except (KeyError, TypeError, ValueError) as exc:
        _fail(f"--result file {str(path)!r} is not a complete hte_report result "
              f"({type(exc).__name__}: {short(str(exc), 120)[1:-1]}). {how}")


class _NumbersFirst(typer.core.TyperCommand):
    """A command whose argument may be a negative number: click reads ``-0.1`` as an unknown
    option ("No such option: -0"); say instead what is wrong with the number."""

    def parse_args(self, ctx, args):
        import re

        takes_value = {name for p in self.params if p.param_type_name == "option"
                       and not getattr(p, "is_flag", False) for name in p.opts}
        previous = None
        for arg in args:
            if arg == "--":
                break
            if re.fullmatch(r"-[0-9.][0-9.,eE+-]*", arg) and previous not in takes_value:
                ctx.fail(f"P0 {arg!r} is negative: baseline risks are proportions strictly "
                         "between 0 and 1 (e.g. 0.05, or 5 with --percent).")
            previous = arg
        return super().parse_args(ctx, args)


@app.command(cls=_NumbersFirst)
def benefit(
    p0: str = typer.Argument(..., help="Baseline risk(s) without treatment, comma-separated "
                             "proportions: 0.05 or 0.05,0.1,0.2 (with --percent: 5,10,20)."),
    rr: float | None = typer.Option(None, "--rr", help="Risk ratio, treated vs control."),
    ci: str = typer.Option("", "--ci", help="Confidence limits of the RR: 'low,high'."),
    result: Path | None = typer.Option(None, "--result", help="Take the RR (and its CI) "
                                          "from a saved HTEResult JSON (result.to_json(path))."),
    modifier: str = typer.Option("", "--modifier", help="With --result: the subgroup's "
                                 "modifier (default: the overall RR)."),
    level: str = typer.Option("", "--level", help="With --result and --modifier: one level."),
    percent: bool = typer.Option(False, "--percent", help="P0 is given in percent."),
    as_json: bool = typer.Option(False, "--json", help="Print the tidy frame as JSON records."),
) -> None:
    """Absolute risk reduction and NNT (NNTB / NNTH, Altman 1998) for baseline risks P0.

    Example: hte-report benefit 0.05 --rr 0.90  ->  ARR 0.50 percentage points, NNTB 200.
    """
    import math

    from hte_report.path.personalized import benefit_from_result, personalized_benefit

    with _clear_errors():
        risks = _numbers(p0, "P0 (baseline risks)")
        if not risks:
            _fail("give at least one baseline risk P0, e.g. 0.05.")
        if percent:
            outside = [x for x in risks if not 0 < x < 100]
            if outside:
                _fail(f"with --percent, P0 must be percentages strictly between 0 and 100; got "
                      f"{outside[0]:g}.")
            risks = [x / 100 for x in risks]
        if level and not modifier:
            _fail("--level names a level of a subgroup's modifier; give the modifier with "
                  "--modifier too (with --result), e.g. --modifier wexp --level 1.")
        if result is not None:
            if rr is not None or ci:
                _fail("give either --rr/--ci or --result, not both.")
            res = _load_result(result)
            frame = benefit_from_result(res, risks, modifier=modifier or None,
                                        level=level or None)
        else:
            if modifier:
                _fail("--modifier (and --level) pick a subgroup's risk ratio from a fitted "
                      "--result; with --rr, the risk ratio is the one given. Remove --modifier, "
                      "or give --result instead of --rr.")
            if rr is None:
                _fail("give the risk ratio with --rr (or a fitted --result).")
            limits = None
            if ci:
                parts = _numbers(ci, "--ci")
                if len(parts) != 2:
                    _fail(f"--ci must be 'low,high', got {ci[:40]!r}.")
                limits = (parts[0], parts[1])
            frame = personalized_benefit(risks, rr, limits)
    if as_json:
        typer.echo(frame.to_json(orient="records", double_precision=15))
        return
    for r in frame.itertuples():
        who = f"{r.modifier} {r.level}".strip() + ": " if "modifier" in frame else ""
        arr = f"ARR {100 * r.arr:.2f} percentage points"
        if math.isfinite(r.arr_low):
            arr += f" ({100 * r.arr_low:.2f} to {100 * r.arr_high:.2f})"
        typer.echo(f"{who}p0 {100 * r.p0:g}%, RR {r.rr:.3g}: {arr}; {r.nnt_text}")


quarto_app = typer.Typer(no_args_is_help=True, help="Quarto projects for the report.")
app.add_typer(quarto_app, name="quarto")


@quarto_app.command("init")
def quarto_init(
    directory: Path = typer.Argument(..., help="Folder for the Quarto project (created)."),
    plan: Path = typer.Option(..., "--plan", help="Analysis plan (YAML)."),
    data: Path = typer.Option(..., "--data", help="Data file (CSV, Parquet, SAS, Stata)."),
    force: bool = typer.Option(False, "--force", help="Overwrite the project's files."),
) -> None:
    """Write a Quarto project (the hte extension and hte-report.qmd) that renders the report
    for PLAN and DATA: `cd DIR && quarto render` (needs the [quarto] extra)."""
    from hte_report.report.render import TEMPLATE, write_quarto_project

    with _clear_errors():
        for what, path in (("--plan", plan), ("--data", data)):
            if not path.is_file():
                _fail(f"{what} {str(path)!r} is not a file.")
        if directory.exists() and not directory.is_dir():
            _fail(f"{str(directory)!r} is a file, not a folder.")
        # the plan and data must fit each other (as 'hte-report check' sees them) before a
        # project that could not render is written
        import warnings

        from hte_report.analysis import read_data_file
        from hte_report.spec.plan import load_plan
        from hte_report.spec.plan_data import check_plan_against_data

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 'hte-report check' shows them
            check_plan_against_data(load_plan(plan), read_data_file(data))
        taken = [n for n in (TEMPLATE, "_quarto.yml", "_extensions")
                 if (directory / n).exists()]
        if taken and not force:
            _fail(f"{str(directory)!r} already has {', '.join(taken)}; add --force to "
                  "overwrite.")
        directory.mkdir(parents=True, exist_ok=True)
        base = directory.resolve()
        qmd = write_quarto_project(directory, plan=os.path.relpath(plan.resolve(), base),
                                   data=os.path.relpath(data.resolve(), base))
    typer.echo(f"wrote {qmd}; render with: cd {directory} && quarto render "
               "(QUARTO_PYTHON must be this Python: " + sys.executable + ")")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
