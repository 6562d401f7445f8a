"""The `ipcredit` command. Errors in the user's input print as messages, never as stack traces.

Exit codes: 0 done; 1 a fault of ours (its trace with --verbose); 2 refused input or settings (every problem
printed); 3 some rows refused (each with its reason in the output's `error` column); 4 a service the command
needs (the model registry, the records database) did not answer; 5 `train --promote`: the gate refused the
promotion (the version is registered, the champion unchanged); 6 `serve` or `up`: the port is in use.

A command imports what it uses when it runs: importing every model library at start would cost `ipcredit
--help` and `ipcredit keys list` about 6 s (mlflow 2.4 s, shap 3.8 s, lightgbm 1.9 s, measured one by one).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from core.settings import REGISTERED_MODELS, champion_uri
from features.errors import InvalidData, ModelMismatch

# LightGBM's OpenMP threads otherwise spin between trees; on a machine shared with other jobs that turns
# seconds of training into minutes (0.6 s a tree on 1,935 rows with every core taken, measured). Set before
# any OpenMP runtime starts; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

app = typer.Typer(
    help="ipcredit: IP valuation and 'IP + credit' scoring for IP pledge lending.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)  # long messages stay whole lines

DEFAULT_DATA = Path("data/portfolio")
VALUATION_URI, SCORING_URI = champion_uri("valuation"), champion_uri("scoring")


REFUSED_INPUT_EXIT = 2
REFUSED_ROWS_EXIT = 3
UNAVAILABLE_EXIT = 4  # a service the command needs (the model registry, the records database) did not answer
GATE_REFUSED_EXIT = 5
PORT_IN_USE_EXIT = 6
PROBLEMS_SHOWN = 20  # refused input: the first rows of each kind of problem are shown, the rest counted


def _unavailable(e: Exception) -> str | None:
    """What did not answer, for an error that says a service is down rather than a fault of ours."""
    from lending.db import driver_message, unavailable
    from models.store import RegistryUnavailable

    if isinstance(e, RegistryUnavailable):
        return str(e)
    if unavailable(e):
        cause = driver_message(e).splitlines()[0]
        return f"the records database (DATABASE_URL) could not be reached: {cause}"
    return None


def _text(e: Exception) -> str:
    """A refusal's text: every problem by row for refused input (its own text stops at 50), the messages
    of refused settings without pydantic's framing."""
    from pydantic import ValidationError

    if isinstance(e, InvalidData):  # every kind of problem, the first rows of each, the rest counted
        return e.describe(by_row=True, per_kind=PROBLEMS_SHOWN)
    if isinstance(e, ValidationError):  # each message with the variable it is about, when there is one
        return "; ".join(
            ": ".join([*map(str, err["loc"][:1]), str(err["msg"]).removeprefix("Value error, ")])
            for err in e.errors()
        )
    return str(e)


def user_errors(command):
    """Turn refused input, settings, missing files and a chosen model that does not fit its input into a
    message and exit code 2, and a service that does not answer into one and exit code 4."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (InvalidData, FileNotFoundError, ValueError, LookupError, ModelMismatch) as e:
            # markup off: file names and data values may hold square brackets
            console.print(f"error: {_text(e)}", markup=False, highlight=False)
            raise typer.Exit(REFUSED_INPUT_EXIT) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as e:  # a fault of ours, not of the input: say so, trace only with --verbose
            down = _unavailable(e)
            if down is not None:
                console.print(f"error: {down}", markup=False, highlight=False)
                raise typer.Exit(UNAVAILABLE_EXIT) from None
            if logging.getLogger().isEnabledFor(logging.INFO):
                raise
            console.print(
                f"internal error: {type(e).__name__}: {e} (run with --verbose for the trace)",
                markup=False,
                highlight=False,
            )
            raise typer.Exit(1) from None

    return wrapper


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details")] = False):
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


SYNTH_ENTERPRISES = 26_000  # features.synth.DEFAULT_ENTERPRISES, written here to keep the CLI's start light
SYNTH_VINTAGES = "2019-2026"
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
    enterprises: Annotated[int, typer.Option(min=10, help="Number of enterprises")] = SYNTH_ENTERPRISES,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same portfolio")] = 7,
    vintages: Annotated[
        str, typer.Option(help="The years loans are originated in, FIRST-LAST (e.g. 2019-2026)")
    ] = SYNTH_VINTAGES,
):
    """Write the synthetic Ezhou book: quarterly credit reports, patents and marks with their legal events,
    loans over the vintages with their outcomes and recoveries (Parquet tables, manifest.json, truth/)."""
    import dataclasses

    from features.synth import Assumptions, synthesize

    first, last = _vintages(vintages)
    assumptions = dataclasses.replace(Assumptions(), first_vintage=first, last_vintage=last)
    with _progress() as bar:
        task = bar.add_task("synthesising", total=len(SYNTH_STAGES) + 1)
        portfolio = synthesize(
            enterprises,
            seed=seed,
            assumptions=assumptions,
            progress=lambda step: bar.update(task, advance=1, description=step),
        )
        bar.update(task, description="writing Parquet")
        portfolio.save(out)
        bar.update(task, advance=1, description="done")
    distinct = portfolio.enterprises["enterprise_id"].nunique()
    snapshots = f"enterprise credit snapshots (of {distinct:,} enterprises)"
    sizes = ", ".join(
        f"{n:,} {snapshots if k == 'enterprises' else k}" for k, n in portfolio.manifest["sizes"].items()
    )
    m = portfolio.manifest
    console.print(
        f"wrote {out}: {sizes}; {m['loans_with_outcome']:,} loans with an outcome ({m['defaults']:,} "
        f"defaults, {m['default_rate_observed'] or 0:.2%}), {m['loans_running']:,} still running",
        markup=False,
    )


def _vintages(text: str) -> tuple[int, int]:
    """FIRST-LAST as two years, or a refusal saying what was expected."""
    parts = text.split("-")
    if len(parts) != 2 or not all(p.strip().isdigit() and len(p.strip()) == 4 for p in parts):
        raise ValueError(f"--vintages: expected two years as FIRST-LAST, e.g. 2019-2026; got {text!r}")
    first, last = (int(p) for p in parts)
    if first > last:
        raise ValueError(f"--vintages: expected the first year on or before the last; got {text!r}")
    return first, last


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
    valuation: Annotated[str, typer.Option(help="Valuation model URI for --scoring-out")] = VALUATION_URI,
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
        from models import registry
        from underwriting.table import scoring_table

        write_table(scoring_table(portfolio, registry.load_fitted(valuation, task="valuation")), scoring_out)
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


train_app = typer.Typer(help="Train a model, log it to MLflow and register it.", no_args_is_help=True)
app.add_typer(train_app, name="train")
models_app = typer.Typer(
    help="The model registry: champions, history, promotion, review.", no_args_is_help=True
)
app.add_typer(models_app, name="models")

DataOption = Annotated[
    Path | None, typer.Option(help="Portfolio folder, or a flat CSV/Parquet table with --spec")
]
SpecOption = Annotated[Path | None, typer.Option(help="Feature spec YAML for a flat table")]
SeedOption = Annotated[int, typer.Option(help="Seed of the split and the model")]
PromoteOption = Annotated[
    bool, typer.Option(help="Make the new version champion if it passes the gate against the current one")
]


def _train(task: str, data: Path | None, spec: Path | None, options, valuation: str) -> None:
    """Train, print the registration and the gate's verdict; exit GATE_REFUSED_EXIT when --promote was
    refused by the gate, UNAVAILABLE_EXIT when the registry could not tell the gate the champion."""
    import json

    from models.training import held_out_summary, train

    with _progress() as bar:
        step = bar.add_task("loading data", total=None)
        registration = train(
            task,
            data,
            spec,
            options=options,
            valuation_uri=valuation,
            progress=lambda what: bar.update(step, description=what),
        )
        bar.update(step, total=1, completed=1, description="done")
    typer.echo(json.dumps(registration.metrics, indent=2, default=str))
    typer.echo(held_out_summary(task, registration.metrics))
    typer.echo(
        f"registered {registration.model_uri} (run {registration.run_id}); "
        f"gate: {registration.verdict.summary()}"
    )
    if options.promote and registration.verdict.decision == "refused":
        console.print(
            f"not promoted: the gate refused it; the champion is unchanged (exit code {GATE_REFUSED_EXIT})",
            markup=False,
        )
        raise typer.Exit(GATE_REFUSED_EXIT)
    if options.promote and registration.verdict.decision == "undecided":
        console.print(
            "not promoted: the model registry could not say who the champion is, so the gate decided "
            f"nothing; the champion is unchanged (exit code {UNAVAILABLE_EXIT})",
            markup=False,
        )
        raise typer.Exit(UNAVAILABLE_EXIT)


@train_app.command("valuation")
@user_errors
def train_valuation_command(
    data: DataOption = None,
    spec: SpecOption = None,
    name: Annotated[str, typer.Option(help="Registered model name")] = REGISTERED_MODELS["valuation"],
    seed: SeedOption = 0,
    promote: PromoteOption = False,
):
    """Train the value model, log it to MLflow with its metrics, card and plots, and register it
    (alias challenger; champion with --promote when it passes the gate; exit code 5 when it does not)."""
    from models.lifecycle import RunOptions

    _train("valuation", data, spec, RunOptions(name=name, seed=seed, promote=promote), VALUATION_URI)


@train_app.command("scoring")
@user_errors
def train_scoring_command(
    data: DataOption = None,
    spec: SpecOption = None,
    name: Annotated[str, typer.Option(help="Registered model name")] = REGISTERED_MODELS["scoring"],
    valuation: Annotated[
        str, typer.Option(help="Valuation model (URI) that values a portfolio's bundles")
    ] = VALUATION_URI,
    seed: SeedOption = 0,
    promote: PromoteOption = False,
):
    """Train the "IP + credit" scoring model and its scorecard challenger; log both figures, the
    validation report (HTML and JSON) and the model to MLflow and register it (exit code 5 when --promote
    is refused by the gate)."""
    from models.lifecycle import RunOptions

    _train("scoring", data, spec, RunOptions(name=name, seed=seed, promote=promote), valuation)


@app.command()
@user_errors
def value(
    input: Annotated[
        Path, typer.Option(help="Assets to value (.csv or .parquet) with the model's feature columns")
    ],
    output: Annotated[Path, typer.Option(help="Where to write the values (.csv or .parquet)")],
    model: Annotated[str, typer.Option(help="MLflow model URI")] = VALUATION_URI,
    level: Annotated[float, typer.Option(help="Interval level")] = 0.9,
):
    """Value assets: one output row per input row, in input order. Bad rows get no value, an `error`
    text, and are listed on stderr; the exit code is then 3."""
    from features.io import check_format, read_table, write_table
    from models import registry

    check_format(output)
    valuer = registry.load_fitted(model, task="valuation")
    out, problems = valuer.value(read_table(input), level)
    write_table(out, output)
    _report_refused(len(out), problems, output, "valued")


@app.command()
@user_errors
def score(
    input: Annotated[
        Path, typer.Option(help="Applications to score (.csv or .parquet) with the model's columns")
    ],
    output: Annotated[Path, typer.Option(help="Where to write the scores (.csv or .parquet)")],
    model: Annotated[str, typer.Option(help="MLflow model URI")] = SCORING_URI,
    language: Annotated[str, typer.Option(help="Language of the reason texts: zh or en")] = "zh",
):
    """Score applications: one output row per input row, in input order (id, pd, score, grade,
    reason_codes, then recommendation, reasons, the credit line, expected loss and its split and the
    interest subsidy when the table has the loan's terms, and error). Bad rows are listed on stderr;
    exit code 3."""
    from features.io import check_format, read_table, write_table
    from models import registry
    from underwriting.decision import decide_loans

    check_format(output)
    scorer = registry.load_fitted(model, task="scoring")
    out, problems = decide_loans(scorer, read_table(input), language=language)
    write_table(out, output)
    _report_refused(len(out), problems, output, "scored")


@app.command()
@user_errors
def decide(
    input: Annotated[
        Path,
        typer.Option(
            help="Applications: JSON lines (.jsonl, one POST /v1/applications body a line), or a table (.csv "
            "or .parquet, one application a row) with --assets"
        ),
    ],
    output: Annotated[Path, typer.Option(help="Where to write the decisions (.csv, .parquet or .jsonl)")],
    assets: Annotated[
        Path | None, typer.Option(help="The pledged assets of a table of applications (.csv or .parquet)")
    ] = None,
    language: Annotated[str, typer.Option(help="Language of the texts: zh or en")] = "zh",
    model_valuation: Annotated[str, typer.Option(help="Valuation model URI")] = VALUATION_URI,
    model_scoring: Annotated[str, typer.Option(help="Scoring model URI")] = SCORING_URI,
    bank_id: Annotated[str, typer.Option(help="The lending bank of applications that name none")] = "offline",
):
    """Decide applications as the service does (POST /v1/applications), one output row each, in input
    order: the bundle's valuation, PD, score, grade, recommendation, holds, credit line, expected loss and
    its split, subsidy, reasons and the explanation (as JSON text), under the service's names. Refused
    applications get an `error` text and are listed on stderr; the exit code is then 3."""
    import gc

    from models import registry
    from underwriting import book

    if language not in ("zh", "en"):
        raise ValueError(f"--language: expected zh or en; got {language!r}")
    book.check_formats(input, output, assets)
    valuer = registry.load_fitted(model_valuation, task="valuation")
    scorer = registry.load_fitted(model_scoring, task="scoring")
    # What is loaded lives as long as the command: kept out of every later garbage collection, which would
    # otherwise walk the models' objects again and again while a book's documents are made (as the service
    # does after its models load: api.main).
    gc.collect()
    gc.freeze()
    with _progress() as bar:
        step = bar.add_task("deciding", total=None)
        outcome = book.decide_book(
            input,
            output,
            valuer,
            scorer,
            assets=assets,
            language=language,
            bank_id=bank_id,
            progress=lambda n: bar.update(step, advance=n),
            sized=lambda n: bar.update(step, total=n),
        )
    _report_refused(outcome.rows, outcome.refused, output, "decided")


def _report_refused(n_rows: int, problems, output: Path, verb: str) -> None:
    """Say how many rows were done; list refused ones (the first PROBLEMS_SHOWN) and exit 3 when there are
    any."""
    typer.echo(f"{verb} {n_rows - len({p.row for p in problems})} of {n_rows} rows -> {output}")
    if problems:
        for p in problems[:PROBLEMS_SHOWN]:
            console.print(f"refused: {p}", markup=False, highlight=False)
        if len(problems) > PROBLEMS_SHOWN:
            hidden = len(problems) - PROBLEMS_SHOWN
            console.print(
                f"... {hidden} more; every refused row has its reason in the `error` column",
                markup=False,
            )
        raise typer.Exit(REFUSED_ROWS_EXIT)


@app.command()
@user_errors
def monitor(
    model: Annotated[str, typer.Option(help="MLflow model URI")],
    data: Annotated[Path, typer.Option(help="Current data (.csv or .parquet) with the model's columns")],
    out: Annotated[Path, typer.Option(help="Folder for drift_report.html and .json")] = Path("drift"),
):
    """PSI per feature and of the model's output against its training data (stable < 0.1 <= watch
    <= 0.25 < rebuild), written as HTML and JSON."""
    from features.io import read_table
    from models import monitor as drift

    report = drift.monitor_model(model, read_table(data))
    html, _ = report.write(out)
    typer.echo(report.table.to_string(index=False))
    typer.echo(f"wrote {html}")


@models_app.command("history")
@user_errors
def models_history(name: Annotated[str, typer.Argument(help="Registered model name")]):
    """Which version was champion when, with each gate's verdict."""
    from models import registry

    # one line per event, its verdict and note on lines of their own: a table would pad every row to the
    # longest verdict (a gate's reasons run to hundreds of characters)
    for event in registry.history(name).itertuples(index=False):
        typer.echo(
            f"{event.time.isoformat()}  version {event.version:<3} {event.event:<10}  run {event.run_id}"
        )
        for label, text in (("verdict", event.verdict), ("note", event.note)):
            if text:
                console.print(f"    {label}: {text}", markup=False, highlight=False)


@models_app.command("champions")
@user_errors
def models_champions():
    """The champion version of each registered model (the built-in ones and a bank's own)."""
    from models import registry

    for name, champion in registry.champion_versions(registry.registered_names()).items():
        since, run = champion.since, champion.run_id
        typer.echo(f"{name}: version {champion.version} since {since} ({champion.uri}, run {run})")


@models_app.command("promote")
@user_errors
def models_promote(
    name: Annotated[str, typer.Argument(help="Registered model name")],
    version: Annotated[str, typer.Argument(help="Version to make champion (a rollback, say)")],
    reason: Annotated[str, typer.Option(help="Why, for the record")],
):
    """Move the champion alias by hand, with a reason on record."""
    from models import registry

    current = registry.current_champion(name)
    when = registry.promote(name, version, reason)
    if when is None:
        typer.echo(f"{name}: version {version} is already the champion; nothing changed")
        return
    was = f"version {current.version}" if current is not None else "no champion"
    typer.echo(f"{name}: champion is now version {version} (was {was}) from {when}; reason recorded")


@models_app.command("review")
@user_errors
def models_review(
    name: Annotated[str, typer.Argument(help="Registered model name")],
    version: Annotated[str, typer.Argument(help="Version reviewed")],
    by: Annotated[str, typer.Option(help="Reviewer (JR/T 0221-2021 review before launch)")],
    note: Annotated[str, typer.Option(help="Review note")] = "",
):
    """Sign the model card's review before launch."""
    from models import card

    typer.echo(card.sign_review(name, version, by, note))


@app.command()
@user_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="Server processes; each loads the models (one per core)")
    ] = 1,
):
    """Serve the HTTP API (models from the registry's champions, records in DATABASE_URL); exit code 6 when
    the port is in use."""
    from api.server import PortInUse
    from api.server import serve as run

    try:
        run(host=host, port=port, workers=workers)
    except PortInUse as e:
        console.print(f"error: {e.strerror}", markup=False, highlight=False)
        raise typer.Exit(PORT_IN_USE_EXIT) from None


@app.command()
@user_errors
def up(port: Annotated[int, typer.Option(help="Port")] = 8000):
    """From a fresh checkout to a ready service: write the synthetic portfolio if none is there, train
    and register both models if no champion exists, create a demo key, then serve on localhost."""
    from api.server import PortInUse
    from api.server import up as run

    try:
        run(port=port, progress=lambda step: console.print(f"[ipcredit up] {step}", markup=False))
    except PortInUse as e:
        console.print(f"error: {e.strerror}", markup=False, highlight=False)
        raise typer.Exit(PORT_IN_USE_EXIT) from None


keys_app = typer.Typer(help="API keys: one per institution and role, stored hashed.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
@user_errors
def keys_create(
    institution: Annotated[str, typer.Option(help="Institution the key belongs to")],
    role: Annotated[str, typer.Option(help="bank, evaluator or admin")],
):
    """Issue a key; it is shown once and only its hash is kept."""
    from lending.keys import create_key

    if role not in ("bank", "evaluator", "admin"):
        raise ValueError(f"role: expected bank, evaluator or admin; got {role!r}")
    with _records() as session:
        key = create_key(session, institution, role)
    typer.echo(key)


@keys_app.command("list")
@user_errors
def keys_list(
    institution: Annotated[str | None, typer.Option(help="Only this institution's keys")] = None,
):
    """Every key (id, prefix, institution, role, created, revoked), oldest first; never a secret."""
    from lending.keys import list_keys

    with _records() as session:
        found = list_keys(session, institution)
    for k in found:
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M:%S}" if k.revoked_at else "active"
        created = f"{k.created_at:%Y-%m-%d %H:%M:%S}"
        typer.echo("\t".join([str(k.key_id), k.prefix, k.institution_name, k.role, created, state]))


@keys_app.command("revoke")
@user_errors
def keys_revoke(key_id: Annotated[int, typer.Argument(help="Id of the key (`ipcredit keys list`)")]):
    """Revoke a key from now on: requests with it get 401 (a running service checks every request)."""
    from lending.keys import revoke_key

    with _records() as session:
        info = revoke_key(session, key_id)
    typer.echo(f"key {info.key_id} ({info.prefix}, {info.institution_name}) revoked at {info.revoked_at}")


@contextlib.contextmanager
def _records():
    """A transaction on the records of DATABASE_URL, migrated first."""
    from core.settings import Settings
    from lending.db import make_engine, migrate, session_factory, transaction

    engine = make_engine(Settings().records_url)
    try:
        migrate(engine)
        with transaction(session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


if __name__ == "__main__":  # python -m cli.main, as the `ipcredit` script
    app()
