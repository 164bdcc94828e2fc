"""The ``hte-report`` command: render, lock, check."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from . import __version__

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Pre-registered treatment-effect heterogeneity reports.")


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


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=1)


@app.command()
def render(
    plan: Path = typer.Argument(..., help="Analysis plan (YAML)."),
    data: Path = typer.Option(..., "--data", help="Data file (CSV, Parquet, SAS, Stata)."),
    to: str = typer.Option("html,pdf", "--to", help="Comma-separated formats: html, pdf."),
    out: Path = typer.Option(Path("out"), "--out", help="Output directory."),
    engine: str = typer.Option("auto", "--engine", help="auto | builtin | quarto."),
    posthoc: str = typer.Option("", "--posthoc",
                                help="Comma-separated modifiers to analyse post hoc."),
) -> None:
    """Fit the planned analysis on DATA and render the report."""
    import warnings

    from .errors import HTEReportError, HTEReportWarning
    from .report.render import render as do_render

    formats = [f.strip() for f in to.split(",") if f.strip()]
    extra = [p.strip() for p in posthoc.split(",") if p.strip()]

    def say(msg: str) -> None:
        typer.echo(f"… {msg}", err=True)

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", HTEReportWarning)
            written = do_render(plan, data, to=formats, out=out, engine=engine, posthoc=extra,
                                progress=say)
        for w in caught:
            if issubclass(w.category, HTEReportWarning):
                typer.echo(f"warning: {w.message}", err=True)
    except (HTEReportError, ValueError, FileNotFoundError) as exc:
        _fail(exc)
    for fmt, path in written.items():
        typer.echo(f"{fmt}: {path}")


@app.command()
def lock(
    plan: Path = typer.Argument(..., help="Analysis plan (YAML) to lock."),
    statement: str = typer.Option("", "--statement", help='e.g. "locked before unblinding".'),
    force: bool = typer.Option(False, "--force", help="Re-lock an edited plan (a deviation)."),
) -> None:
    """Write PLAN.lock.json with the plan's SHA-256 and a UTC timestamp."""
    from .errors import HTEReportError
    from .plan import lock_path, lock_plan

    try:
        rec = lock_plan(plan, statement=statement, force=force)
    except HTEReportError as exc:
        _fail(exc)
    typer.echo(f"locked {plan} sha256={rec.plan_sha256} at {rec.locked_at} -> {lock_path(plan)}")


@app.command()
def check(
    plan: Path = typer.Argument(..., help="Analysis plan (YAML)."),
    data: Path = typer.Option(..., "--data", help="Data file."),
) -> None:
    """Validate PLAN against DATA without fitting anything."""
    from .data import read_data
    from .errors import HTEReportError
    from .plan import check_plan_against_data, load_plan

    try:
        p = load_plan(plan)
        frame = read_data(data)
        check_plan_against_data(p, frame.columns)
    except (HTEReportError, ValueError) as exc:
        _fail(exc)
    typer.echo(f"ok: {plan} (sha256 {p.sha256[:16]}…, lock status {p.lock_status()}) matches "
               f"{data} ({len(frame)} rows); {len(p.modifiers)} pre-specified modifiers.")


@app.command()
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

    from .benefit import benefit_from_result, personalized_benefit
    from .errors import HTEReportError

    try:
        risks = [float(x) for x in p0.split(",") if x.strip()]
        if percent:
            risks = [x / 100 for x in risks]
        if result is not None:
            if rr is not None or ci:
                raise ValueError("give either --rr/--ci or --result, not both.")
            from .result import HTEResult

            res = HTEResult.from_json(Path(result).read_text(encoding="utf-8"))
            frame = benefit_from_result(res, risks, modifier=modifier or None,
                                        level=level or None)
        else:
            if rr is None:
                raise ValueError("give the risk ratio with --rr (or a fitted --result).")
            limits = None
            if ci:
                parts = [float(x) for x in ci.split(",")]
                if len(parts) != 2:
                    raise ValueError(f"--ci must be 'low,high', got {ci!r}.")
                limits = (parts[0], parts[1])
            frame = personalized_benefit(risks, rr, limits)
    except (HTEReportError, ValueError, FileNotFoundError) as exc:
        _fail(exc)
    if as_json:
        typer.echo(frame.to_json(orient="records", double_precision=15))
        return
    for r in frame.itertuples():
        who = f"{r.modifier} {r.level}".strip() + ": " if "modifier" in frame else ""
        arr = f"ARR {100 * r.arr:.2f} percentage points"
        if math.isfinite(r.arr_low):
            arr += f" ({100 * r.arr_low:.2f} to {100 * r.arr_high:.2f})"
        typer.echo(f"{who}p0 {100 * r.p0:g}%, RR {r.rr:.3g}: {arr}; {r.nnt_text}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
