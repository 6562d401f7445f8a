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

app = typer.Typer(help="ipcredit: IP valuation and 'IP + credit' scoring for IP pledge lending.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console(stderr=True)

DEFAULT_DATA = Path("data/portfolio")


def user_errors(command):
    """Turn refused input and missing files into a message and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (InvalidData, FileNotFoundError) as e:
            console.print(f"[red]error:[/red] {e}", markup=True, highlight=False)
            raise typer.Exit(2) from None

    return wrapper


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details")] = False):
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


SYNTH_STAGES = ["enterprises", "patents and trademarks", "events", "applications", "true values", "defaults",
                "tables"]


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
        portfolio = synthesize(enterprises, seed=seed,
                               progress=lambda step: bar.update(task, advance=1, description=step))
        bar.update(task, description="writing Parquet")
        portfolio.save(out)
        bar.update(task, advance=1, description="done")
    sizes = ", ".join(f"{n} {k}" for k, n in portfolio.manifest["sizes"].items())
    console.print(f"wrote {out}: {sizes}; observed default rate "
                  f"{portfolio.manifest['default_rate_observed']:.2%}")


@app.command()
@user_errors
def features(
    data: Annotated[Path, typer.Option(help="Portfolio folder written by `ipcredit synth`")] = DEFAULT_DATA,
    out: Annotated[Path | None, typer.Option(help="Write the application features here (.csv or .parquet)")] = None,
):
    """Validate a portfolio and summarise its application features (as of each application date)."""
    from features.io import write_table
    from features.pipeline import application_features, feature_summary
    from features.portfolio import Portfolio

    portfolio = Portfolio.load(data)
    portfolio.validate()
    table = application_features(portfolio)
    typer.echo(f"{len(table)} applications, {table.shape[1] - 1} features, "
               f"default rate {table['defaulted_12m'].mean():.2%}")
    typer.echo(feature_summary(table).to_string(float_format=lambda v: f"{v:,.3f}"))
    if out is not None:
        write_table(table.reset_index(), out)
        typer.echo(f"wrote {out}")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description:<24}"), BarColumn(), TimeElapsedColumn(), console=console)
