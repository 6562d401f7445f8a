"""The `ipcredit` command: what it writes and prints, and that refused input is a message, not a traceback."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from features.errors import InvalidData, Problem
from features.portfolio import TABLE_MODELS, Portfolio

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def flat(text: str) -> str:
    """Output with line wrapping undone: the console wraps long messages at the terminal width, keeping
    the space before a break at a word and inserting none when it breaks inside a long word."""
    return " ".join(text.replace("\n", "").split())


def assert_refused(result, *fragments: str) -> None:
    """Exit code 2, a message holding every fragment, and no traceback or escaped exception."""
    assert result.exit_code == 2, (result.exit_code, result.output, repr(result.exception))
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in flat(result.output), (fragment, result.output)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli") / "portfolio"
    result = run("synth", "--out", folder, "--enterprises", 200, "--seed", 1)
    assert result.exit_code == 0, result.output
    return folder, result


# --- synth ------------------------------------------------------------------------------------------


def test_synth_writes_every_table_the_manifest_and_the_truth(data):
    folder, result = data
    assert sorted(p.name for p in folder.glob("*.parquet")) == sorted(f"{n}.parquet" for n in TABLE_MODELS)
    assert sorted(p.stem for p in (folder / "truth").glob("*.parquet")) == [
        "applications",
        "enterprises",
        "patents",
        "trademarks",
    ]
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == 1
    assert manifest["sizes"]["enterprises"] == len(pd.read_parquet(folder / "enterprises.parquet"))
    assert manifest["sizes"]["applications"] == len(pd.read_parquet(folder / "applications.parquet")) > 0
    assert f"wrote {folder}" in flat(result.output) and "loans with an outcome" in flat(result.output)
    snapshots = manifest["sizes"]["enterprises"]
    distinct = pd.read_parquet(folder / "enterprises.parquet")["enterprise_id"].nunique()
    assert f"{snapshots:,} enterprise credit snapshots (of {distinct:,} enterprises)" in flat(result.output)


def test_refused_input_lists_every_kind_of_problem_in_row_order(monkeypatch):
    """Every kind of problem (field and expectation) is listed, in row order; of a kind found on many rows,
    the first 20, and the rest counted."""
    import cli.main

    problems = [Problem("x", "a number", "?", row) for row in (13, 5, None, *range(100, 160))]
    problems.append(Problem("y", "a date", "?", 150))

    def refuse(*args, **kwargs):
        raise InvalidData(problems, "table")

    monkeypatch.setattr(cli.main, "_records", refuse)
    result = run("keys", "list")
    assert_refused(result, "table refused, 64 problem(s)", "... and 43 more (x: 43)")
    listed = [line for line in result.output.splitlines() if line.startswith("  - ")]
    rows = [int(line.split("(row ")[1].rstrip(")")) if "(row " in line else None for line in listed]
    assert rows == [None, 5, 13, *range(100, 117), 150]  # x's first 20, then y's, however late


def test_the_same_seed_writes_the_same_tables(data, tmp_path):
    folder, _ = data
    again = run("synth", "--out", tmp_path / "again", "--enterprises", 200, "--seed", 1)
    assert again.exit_code == 0, again.output
    for name in TABLE_MODELS:
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "again" / f"{name}.parquet"),
            pd.read_parquet(folder / f"{name}.parquet"),
            obj=name,
        )
    other = run("synth", "--out", tmp_path / "other", "--enterprises", 200, "--seed", 2)
    assert other.exit_code == 0, other.output
    assert not pd.read_parquet(tmp_path / "other" / "patents.parquet").equals(
        pd.read_parquet(folder / "patents.parquet")
    )


def test_synth_refuses_too_few_enterprises(tmp_path):
    result = run("synth", "--out", tmp_path / "p", "--enterprises", 5)
    assert result.exit_code == 2 and "--enterprises" in result.output
    assert not (tmp_path / "p").exists()


# --- features --------------------------------------------------------------------------------------------


def test_features_prints_a_summary_and_writes_one_row_per_application(data, tmp_path):
    folder, _ = data
    out = tmp_path / "f.csv"
    result = run("features", "--data", folder, "--out", out)
    assert result.exit_code == 0, (result.output, repr(result.exception))
    applications = pd.read_parquet(folder / "applications.parquet")
    first_line = result.output.splitlines()[0]
    assert first_line.startswith(f"{len(applications)} applications, ") and "default rate" in first_line
    assert "present" in result.output and "median" in result.output and "leverage" in result.output
    assert f"wrote {out}" in flat(result.output)
    table = pd.read_csv(out)
    assert table["application_id"].tolist() == applications["application_id"].tolist()
    assert {"leverage", "concentration_hhi", "defaulted_12m"} <= set(table.columns)


def test_features_writes_parquet_too(data, tmp_path):
    folder, _ = data
    result = run("features", "--data", folder, "--out", tmp_path / "f.parquet")
    assert result.exit_code == 0, result.output
    written = pd.read_parquet(tmp_path / "f.parquet")
    assert len(written) == len(pd.read_parquet(folder / "applications.parquet"))


def test_features_on_a_folder_that_is_not_a_portfolio(tmp_path):
    (tmp_path / "notes.txt").write_text("not a portfolio", encoding="utf-8")
    result = run("features", "--data", tmp_path)
    assert_refused(result, f"{tmp_path} is not a portfolio folder", *[f"{n}.parquet" for n in TABLE_MODELS])


def test_features_on_a_portfolio_with_a_corrupted_table(data, tmp_path):
    folder, _ = data
    broken = shutil.copytree(folder, tmp_path / "broken")
    patents = pd.read_parquet(broken / "patents.parquet")
    row = int(patents.index[(patents["n_claims"] > 0).to_numpy()][2])
    patents.loc[row, "n_claims"] = -3
    patents.to_parquet(broken / "patents.parquet", index=False)
    result = run("features", "--data", broken, "--out", tmp_path / "f.csv")
    assert_refused(
        result,
        "portfolio refused",
        f"patents.n_claims: expected >= 0; got -3 (row {row}, id {patents.loc[row, 'patent_id']})",
    )
    assert not (tmp_path / "f.csv").exists()


def test_features_refuses_an_output_file_of_unknown_format(data, tmp_path):
    """BUG: `--out x.txt` is only checked by write_table after all the work is done, and the ValueError
    it raises is not one that `user_errors` turns into a message: the command dies with a traceback
    (exit code 1) instead of exiting 2 with the reason."""
    folder, _ = data
    result = run("features", "--data", folder, "--out", tmp_path / "x.txt")
    assert_refused(result, "expected a file ending in .csv or .parquet", "'.txt'")
    assert not (tmp_path / "x.txt").exists()


@pytest.mark.parametrize("name", ["portfolio[old]", "x[/b]"])
def test_an_error_message_is_printed_verbatim(tmp_path, name):
    """BUG: `user_errors` prints the message with rich markup on, so square brackets in it (here in a
    folder name; in data errors, in the values shown) are read as style tags: `[old]` silently vanishes
    from the message and `[/b]` crashes the command with a MarkupError traceback."""
    folder = tmp_path / name
    folder.mkdir(parents=True)
    assert_refused(run("features", "--data", folder), f"{folder} is not a portfolio folder")


def test_a_chosen_model_that_does_not_fit_its_input_exits_2_not_as_a_fault_of_ours():
    import typer

    from cli.main import user_errors
    from features.errors import ModelMismatch

    @user_errors
    def command():
        raise ModelMismatch(
            "the scoring model reads features that an application's row does not give: debtinc"
        )

    with pytest.raises(typer.Exit) as stopped:
        command()
    assert stopped.value.exit_code == 2


def test_keys_in_production_need_the_records_database_and_not_the_model_registry(tmp_path, monkeypatch):
    """`ipcredit keys` never opens the registry: prod asks it for DATABASE_URL only."""
    monkeypatch.setenv("IPCREDIT_ENV", "prod")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    refused = run("keys", "list")
    assert refused.exit_code == 2 and "DATABASE_URL must be set" in refused.output
    assert "MLFLOW" not in refused.output


def test_keys_create_prints_a_key_once_and_refuses_unknown_roles(tmp_path, monkeypatch):
    monkeypatch.setenv("IPCREDIT_HOME", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = run("keys", "create", "--institution", "鄂州农商行", "--role", "bank")
    assert result.exit_code == 0, result.output
    key = result.output.strip()
    assert key.startswith("ipc_") and len(key) > 40
    assert key.encode() not in (tmp_path / "ipcredit.db").read_bytes()  # only its hash is stored
    refused = run("keys", "create", "--institution", "x", "--role", "god")
    assert refused.exit_code == 2 and "role: expected bank, evaluator or admin" in refused.output


def test_keys_list_shows_no_secret_and_revoke_ends_a_key(tmp_path, monkeypatch):
    from lending.db import make_engine, session_factory, transaction
    from lending.keys import authenticate

    monkeypatch.setenv("IPCREDIT_HOME", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    bank = run("keys", "create", "--institution", "鄂州农商行", "--role", "bank").output.strip()
    run("keys", "create", "--institution", "Evaluator", "--role", "evaluator")
    listed = run("keys", "list")
    assert listed.exit_code == 0, listed.output
    rows = [line.split("\t") for line in listed.output.strip().splitlines()]
    assert [(r[2], r[3], r[5]) for r in rows] == [
        ("鄂州农商行", "bank", "active"),
        ("Evaluator", "evaluator", "active"),
    ]
    assert bank not in listed.output and bank.split("_")[1] == rows[0][1]  # the prefix, never the secret
    assert len(run("keys", "list", "--institution", "Evaluator").output.strip().splitlines()) == 1

    revoked = run("keys", "revoke", rows[0][0])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert run("keys", "list").output.splitlines()[0].split("\t")[5].startswith("revoked ")
    engine = make_engine(f"sqlite:///{tmp_path / 'ipcredit.db'}")
    with transaction(session_factory(engine)) as session:
        assert authenticate(session, bank) is None
    engine.dispose()
    missing = run("keys", "revoke", "999")
    assert missing.exit_code == 2 and "no API key with id 999" in missing.output


def test_serve_passes_host_port_and_workers_and_refuses_zero_workers(monkeypatch):
    import api.server

    calls = []
    monkeypatch.setattr(api.server, "serve", lambda **kwargs: calls.append(kwargs))
    result = runner.invoke(app, ["serve", "--port", "8765", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert calls == [{"host": "127.0.0.1", "port": 8765, "workers": 2}]
    result = runner.invoke(app, ["serve", "--workers", "0"])
    assert result.exit_code != 0 and "workers" in result.output and len(calls) == 1


def test_serve_refuses_bad_settings_in_one_line_before_any_server_starts(tmp_path, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("a server was started"))
    monkeypatch.setenv("IPCREDIT_ENV", "prod")
    monkeypatch.setenv("DATABASE_URL", "postgresql://ipcredit:x@127.0.0.1:1/none")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: MLFLOW_TRACKING_URI must be set when IPCREDIT_ENV=prod; got nothing (the local store under "
        "IPCREDIT_HOME is for one machine: point the engine at the bank's MLflow server)"
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")  # nothing listens on port 1
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 4  # a service it needs did not answer: not refused input, not our fault
    assert result.output.startswith("error: the records database (DATABASE_URL) could not be reached: ")
    assert "Traceback" not in result.output and "\n" not in result.output.strip()


def test_a_registry_that_does_not_answer_is_not_taken_for_an_empty_one(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # refused at once: no waiting in a test
    for command in (["models", "champions"], ["models", "history", "ipcredit-scoring"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 4, result.output
        assert result.output.startswith("error: the model registry at http://127.0.0.1:1 did not answer")


def test_training_on_a_data_file_that_does_not_exist_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("IPCREDIT_HOME", str(tmp_path / ".ipcredit"))
    missing = tmp_path / "bank" / "nope.csv"
    result = run("train", "scoring", "--data", missing, "--spec", tmp_path / "spec.yaml")
    assert_refused(result, f"--data {missing}: no such file or folder (expected a table file)")
    assert "portfolio folder" not in result.output


def test_a_table_refused_row_by_row_shows_the_first_problems_and_counts_the_rest(tmp_path, monkeypatch):
    """A target written as yes/no is wrong on every row: 20 lines, then how many more of each field."""
    monkeypatch.setenv("IPCREDIT_HOME", str(tmp_path / ".ipcredit"))
    rows = 50
    pd.DataFrame(
        {"loan_id": [f"L{i}" for i in range(rows)], "bad": ["yes", "no"] * (rows // 2), "x": range(rows)}
    ).to_csv(tmp_path / "book.csv", index=False)
    (tmp_path / "spec.yaml").write_text(
        "target: bad\nid: loan_id\nfeatures:\n  - {name: x, type: numeric}\n", encoding="utf-8"
    )
    result = run("train", "scoring", "--data", tmp_path / "book.csv", "--spec", tmp_path / "spec.yaml")
    assert_refused(result, f"refused, {rows} problem(s)", f"... and {rows - 20} more (bad: {rows - 20})")
    assert sum(line.startswith("  - bad:") for line in result.output.splitlines()) == 20


def test_serve_and_up_on_a_port_in_use_say_so_in_one_line_and_exit_6(tmp_path, monkeypatch):
    import socket

    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("a server was started"))
    monkeypatch.setenv("IPCREDIT_HOME", str(tmp_path / ".ipcredit"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for command in (["serve", "--port", port], ["up", "--port", port]):
            result = run(*command)
            assert result.exit_code == 6, result.output
            assert flat(result.output) == (
                f"error: port {port} on 127.0.0.1 is in use (another service is listening there): choose "
                "another with --port"
            )
    assert not (tmp_path / ".ipcredit" / "mlflow.db").exists()  # up stopped before any training


@pytest.mark.parametrize(
    "files, fragments",
    [
        (["--input", "book.csv", "--output", "out.csv"], ["--assets: expected the table of the"]),
        (["--input", "book.txt", "--output", "out.csv"], ["--input: expected a file ending in .jsonl"]),
        (["--input", "book.jsonl", "--output", "out.xlsx"], ["--output: expected a file ending in .csv"]),
        (["--input", "missing.jsonl", "--output", "out.csv"], ["no such file", "missing.jsonl"]),
    ],
)
def test_decide_refuses_files_it_cannot_read_or_write_before_loading_a_model(tmp_path, files, fragments):
    (tmp_path / "book.csv").write_text("application_id\n")
    (tmp_path / "book.txt").write_text("")
    (tmp_path / "book.jsonl").write_text("")
    paths = [str(tmp_path / f) if not f.startswith("--") else f for f in files]
    assert_refused(run("decide", *paths), *fragments)


def test_train_promote_exits_5_when_the_gate_refuses_and_leaves_the_champion(data, tmp_path, monkeypatch):
    """A retrain with another seed holds out rows the champion learned from: too few unseen rows to compare
    fairly, so the gate refuses, the version is registered, and the exit code says so."""
    from features.portfolio import Portfolio
    from valuation.data import default_spec, in_force, training_table

    monkeypatch.setenv("IPCREDIT_HOME", str(tmp_path / ".ipcredit"))
    folder, _ = data
    table = training_table(Portfolio.load(folder))
    table = table[in_force(table)].reset_index(drop=True)
    table.to_parquet(tmp_path / "values.parquet")
    default_spec(table).to_yaml(tmp_path / "spec.yaml")
    train = ["train", "valuation", "--data", tmp_path / "values.parquet", "--spec", tmp_path / "spec.yaml"]
    first = run(*train, "--name", "bank-v", "--promote")
    assert first.exit_code == 0, first.output
    assert "first champion" in first.output
    again = run(*train, "--name", "bank-v", "--promote", "--seed", 1)
    assert again.exit_code == 5, again.output
    assert "refused" in again.output and "not promoted: the gate refused it" in flat(again.output)
    champions = run("models", "champions")
    assert "bank-v: version 1 " in champions.output  # unchanged
    without = run(*train, "--name", "bank-v", "--seed", 2)  # not asked to promote: nothing refused
    assert without.exit_code == 0, without.output


def test_synth_s_defaults_are_the_generator_s_and_bad_vintages_are_refused(tmp_path):
    from cli.main import SYNTH_ENTERPRISES, SYNTH_VINTAGES
    from features.synth import DEFAULT_ENTERPRISES, Assumptions

    a = Assumptions()
    assert SYNTH_ENTERPRISES == DEFAULT_ENTERPRISES
    assert SYNTH_VINTAGES == f"{a.first_vintage}-{a.last_vintage}"
    for given in ("2019", "2026-2019", "19-26"):
        refused = run("synth", "--out", tmp_path / "p", "--vintages", given)
        assert refused.exit_code == 2 and "--vintages: expected" in refused.output, given


def test_synth_writes_the_chosen_vintages(tmp_path):
    result = run("synth", "--out", tmp_path / "p", "--enterprises", 300, "--vintages", "2022-2024")
    assert result.exit_code == 0, result.output
    written = Portfolio.load(tmp_path / "p")
    assert set(written.applications["application_date"].dt.year) == {2022, 2023, 2024}
    assert "still running" in result.output
