"""The `ipcredit` command. Errors in the user's input print as messages, never as stack traces."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from features.errors import InvalidData

app = typer.Typer(
    help="ipcredit: IP valuation and 'IP + credit' scoring for IP pledge lending.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

DEFAULT_DATA = Path("data/portfolio")


def user_errors(command):
    """Turn refused input and missing files into a message and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (InvalidData, FileNotFoundError, ValueError) as e:
            # markup off: file names and data values may hold square brackets
            console.print(f"error: {e}", markup=False, highlight=False)
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as e:  # a fault of ours, not of the input: say so, trace only with --verbose
            if logging.getLogger().isEnabledFor(logging.INFO):
                raise
            console.print(f"internal error: {type(e).__name__}: {e} (run with --verbose for the trace)",
                          markup=False, highlight=False)
            raise typer.Exit(1) from None

    return wrapper


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details")] = False):
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


SYNTH_STAGES = [
    "enterprises",
    "patents and trademarks",
    "events",
    "applications",
    "true values",
    "defaults",
    "tables",
]


@app.command()
@user_errors
def synth(
    out: Annotated[Path, typer.Option(help="Folder to write the portfolio to")] = DEFAULT_DATA,
    enterprises: Annotated[int, typer.Option(min=10, help="Number of enterprises")] = 5_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same portfolio")] = 7,
):
    """Write the synthetic Ezhou portfolio (Parquet tables, manifest.json, truth/)."""
    from features.synth import synthesize

    with _progress() as bar:
        task = bar.add_task("synthesising", total=len(SYNTH_STAGES) + 1)
        portfolio = synthesize(
            enterprises, seed=seed, progress=lambda step: bar.update(task, advance=1, description=step)
        )
        bar.update(task, description="writing Parquet")
        portfolio.save(out)
        bar.update(task, advance=1, description="done")
    sizes = ", ".join(f"{n} {k}" for k, n in portfolio.manifest["sizes"].items())
    console.print(
        f"wrote {out}: {sizes}; observed default rate {portfolio.manifest['default_rate_observed']:.2%}"
    )


@app.command()
@user_errors
def features(
    data: Annotated[Path, typer.Option(help="Portfolio folder written by `ipcredit synth`")] = DEFAULT_DATA,
    out: Annotated[
        Path | None, typer.Option(help="Write the application features here (.csv or .parquet)")
    ] = None,
    assets_out: Annotated[
        Path | None,
        typer.Option(
            help="Write every patent and trademark in force on --as-of as valuation rows "
            "(the input of `ipcredit value`)"
        ),
    ] = None,
    as_of: Annotated[str, typer.Option(help="Date of the asset rows (YYYY-MM-DD)")] = "2025-06-30",
    scoring_out: Annotated[
        Path | None,
        typer.Option(
            help="Write the scoring table (the input of `ipcredit score`), valuing bundles with --valuation"
        ),
    ] = None,
    valuation: Annotated[str, typer.Option(help="Valuation model for --scoring-out")] = "ipcredit-valuation",
):
    """Validate a portfolio and summarise its application features (as of each application date)."""
    from features.io import check_format, write_table
    from features.pipeline import application_features, feature_summary
    from features.portfolio import Portfolio

    for target in (out, assets_out, scoring_out):
        if target is not None:
            check_format(target)  # refuse a wrong extension before the work, not after
    portfolio = Portfolio.load(data)
    portfolio.validate()
    table = application_features(portfolio)
    typer.echo(
        f"{len(table)} applications, {table.shape[1] - 1} features, "
        f"default rate {table['defaulted_12m'].mean():.2%}"
    )
    typer.echo(feature_summary(table).to_string(float_format=lambda v: f"{v:,.3f}"))
    if out is not None:
        write_table(table.reset_index(), out)
        typer.echo(f"wrote {out}")
    if scoring_out is not None:
        from models import store
        from scoring.data import scoring_table

        write_table(scoring_table(portfolio, store.load(valuation)), scoring_out)
        typer.echo(f"wrote the scoring table to {scoring_out}")
    if assets_out is not None:
        import pandas as pd

        from valuation.data import asset_rows, in_force

        when = pd.Timestamp(as_of)
        rows = pd.concat(
            [
                pd.DataFrame(
                    {
                        "asset_kind": "patent",
                        "asset_id": portfolio.patents["patent_id"],
                        "filed": portfolio.patents["filing_date"],
                    }
                ),
                pd.DataFrame(
                    {
                        "asset_kind": "trademark",
                        "asset_id": portfolio.trademarks["trademark_id"],
                        "filed": portfolio.trademarks["filing_date"],
                    }
                ),
            ],
            ignore_index=True,
        )
        rows = rows[rows["filed"] <= when].drop(columns="filed").assign(as_of=when)
        assets = asset_rows(portfolio, rows)
        assets = assets[in_force(assets)]
        write_table(assets, assets_out)
        typer.echo(f"wrote {len(assets):,} assets in force on {as_of} to {assets_out}")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description:<24}"), BarColumn(), TimeElapsedColumn(), console=console)


train_app = typer.Typer(help="Train a model and print its held-out metrics.", no_args_is_help=True)
app.add_typer(train_app, name="train")


@train_app.command("valuation")
@user_errors
def train_valuation_command(
    data: Annotated[
        Path | None, typer.Option(help="Portfolio folder, or a flat CSV/Parquet table with --spec")
    ] = None,
    spec: Annotated[Path | None, typer.Option(help="Feature spec YAML for a flat table")] = None,
    name: Annotated[str, typer.Option(help="Name to store the model under")] = "ipcredit-valuation",
    seed: Annotated[int, typer.Option(help="Seed of the split and the model")] = 0,
):
    """Train the value model; prints held-out accuracy and interval coverage."""
    import json

    from models import store
    from models.datasets import training_data
    from valuation.train import train_valuation

    with _progress() as bar:
        task = bar.add_task("loading data", total=3)
        table, feature_spec, _ = training_data("valuation", data, spec)
        bar.update(task, advance=1, description=f"training on {len(table):,} rows")
        trained = train_valuation(table, feature_spec, seed=seed)
        bar.update(task, advance=1, description="storing")
        folder = store.save(name, trained.valuer, feature_spec, trained.metrics)
        bar.update(task, advance=1, description="done")
    typer.echo(json.dumps(trained.metrics, indent=2))
    typer.echo(f"stored {folder}")


@app.command()
@user_errors
def value(
    input: Annotated[
        Path, typer.Option(help="Assets to value (.csv or .parquet) with the model's feature columns")
    ],
    output: Annotated[Path, typer.Option(help="Where to write the values (.csv or .parquet)")],
    model: Annotated[str, typer.Option(help="Stored model name")] = "ipcredit-valuation",
    level: Annotated[float, typer.Option(help="Interval level")] = 0.9,
):
    """Value assets: one output row per input row, in input order. Bad rows get no value, an `error`
    text, and are listed on stderr; the exit code is then 3."""
    from features.io import check_format, read_table, write_table
    from models import store

    check_format(output)
    valuer = store.load(model)
    table = read_table(input)
    out, problems = valuer.value(table, level)
    write_table(out, output)
    _report_refused(len(out), problems, output, "valued")


def _report_refused(n_rows: int, problems, output: Path, verb: str) -> None:
    """Say how many rows were done; list refused ones (the first 20) and exit 3 when there are any."""
    typer.echo(f"{verb} {n_rows - len({p.row for p in problems})} of {n_rows} rows -> {output}")
    if problems:
        for p in problems[:20]:
            console.print(f"refused: {p}", markup=False, highlight=False)
        if len(problems) > 20:
            console.print(
                f"... {len(problems) - 20} more; every refused row has its reason in the `error` column",
                markup=False,
            )
        raise typer.Exit(3)


@train_app.command("scoring")
@user_errors
def train_scoring_command(
    data: Annotated[
        Path | None, typer.Option(help="Portfolio folder, or a flat CSV/Parquet table with --spec")
    ] = None,
    spec: Annotated[Path | None, typer.Option(help="Feature spec YAML for a flat table")] = None,
    name: Annotated[str, typer.Option(help="Name to store the model under")] = "ipcredit-scoring",
    valuation: Annotated[str, typer.Option(help="Valuation model that values a portfolio's bundles")] = (
        "ipcredit-valuation"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the split and the model")] = 0,
):
    """Train the "IP + credit" scoring model and its scorecard challenger; prints held-out metrics
    and writes the validation report (HTML and JSON) beside the stored model."""
    import json

    from models import store
    from models.datasets import training_data
    from scoring.train import train_scoring
    from scoring.validation import write_report

    with _progress() as bar:
        task = bar.add_task("loading data", total=4)
        valuer = None if data is not None and data.is_file() else store.load(valuation)
        table, feature_spec, _ = training_data("scoring", data, spec, valuer=valuer)
        bar.update(task, advance=1, description=f"training on {len(table):,} rows")
        trained = train_scoring(table, feature_spec, seed=seed)
        bar.update(task, advance=1, description="storing")
        folder = store.save(name, trained.model, feature_spec, trained.metrics)
        bar.update(task, advance=1, description="validation report")
        html, _ = write_report(trained.report, folder)
        bar.update(task, advance=1, description="done")
    typer.echo(json.dumps(trained.metrics, indent=2))
    typer.echo(f"stored {folder}; validation report {html}")


@app.command()
@user_errors
def score(
    input: Annotated[
        Path, typer.Option(help="Applications to score (.csv or .parquet) with the model's columns")
    ],
    output: Annotated[Path, typer.Option(help="Where to write the scores (.csv or .parquet)")],
    model: Annotated[str, typer.Option(help="Stored model name")] = "ipcredit-scoring",
    language: Annotated[str, typer.Option(help="Language of the reason texts: zh or en")] = "zh",
):
    """Score applications: one output row per input row, in input order (id, pd, score, grade,
    reason_codes, then recommendation, reasons, the credit line, expected loss and its split and the
    interest subsidy when the table has the loan's terms, and error). Bad rows are listed on stderr;
    exit code 3."""
    from features.io import check_format, read_table, write_table
    from models import store
    from scoring.decision import decide_loans

    check_format(output)
    scorer = store.load(model)
    table = read_table(input)
    out, problems = decide_loans(scorer, table, language=language)
    write_table(out, output)
    _report_refused(len(out), problems, output, "scored")
