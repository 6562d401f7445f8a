"""A portfolio: the set of tables a bank's book (or the synthetic one) consists of, with I/O and checks.

On disk a portfolio is a folder of Parquet files, one per table, plus `manifest.json`. Latent truth
that no bank observes (true asset values, true PDs) is kept apart in `truth/`, only for the
synthetic portfolio, so that benchmarks can score models against it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import pandas as pd

from features import schema
from features.errors import InvalidData, Problem

TABLE_MODELS: dict[str, type[schema.Record]] = {
    "enterprises": schema.Enterprise,
    "patents": schema.Patent,
    "trademarks": schema.Trademark,
    "events": schema.AssetEvent,
    "applications": schema.LoanApplication,
    "pledges": schema.Pledge,
    "outcomes": schema.LoanOutcome,
    "appraisals": schema.Appraisal,
}


@dataclass
class Portfolio:
    enterprises: pd.DataFrame
    patents: pd.DataFrame
    trademarks: pd.DataFrame
    events: pd.DataFrame
    applications: pd.DataFrame
    pledges: pd.DataFrame
    outcomes: pd.DataFrame
    appraisals: pd.DataFrame
    truth: dict[str, pd.DataFrame] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in TABLE_MODELS}

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        (folder / "truth").mkdir(parents=True, exist_ok=True)
        for name, df in self.tables().items():
            df.to_parquet(folder / f"{name}.parquet", index=False)
        for name, df in self.truth.items():
            df.to_parquet(folder / "truth" / f"{name}.parquet", index=False)
        (folder / "manifest.json").write_text(
            json.dumps(self.manifest, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
        )
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, truth: bool = False) -> Portfolio:
        folder = Path(folder)
        missing = [f"{n}.parquet" for n in TABLE_MODELS if not (folder / f"{n}.parquet").exists()]
        if missing:
            raise FileNotFoundError(f"{folder} is not a portfolio folder: missing {', '.join(missing)}")
        tables = {n: pd.read_parquet(folder / f"{n}.parquet") for n in TABLE_MODELS}
        truth_tables = (
            {p.stem: pd.read_parquet(p) for p in sorted((folder / "truth").glob("*.parquet"))}
            if truth
            else {}
        )
        manifest_path = folder / "manifest.json"
        manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
        return cls(**tables, truth=truth_tables, manifest=manifest)

    def validate(self, *, today: dt.date | None = None) -> None:
        """Check every table and the links between them; all problems reported together."""
        problems: list[Problem] = []
        for name, df in self.tables().items():
            try:
                schema.validate_table(df, TABLE_MODELS[name], today=today, what=name)
            except InvalidData as e:
                problems += [
                    Problem(f"{name}.{p.field}", p.expected, p.got, p.row, p.record_id) for p in e.problems
                ]
        if not problems:
            problems += self._link_problems()
        if problems:
            raise InvalidData(problems, "portfolio")

    def _link_problems(self) -> list[Problem]:
        """References between tables: every id used must exist where it is defined."""
        known = {
            "enterprise": set(self.enterprises["enterprise_id"]),
            "patent": set(self.patents["patent_id"]),
            "trademark": set(self.trademarks["trademark_id"]),
            "application": set(self.applications["application_id"]),
        }
        checks = [
            ("patents", self.patents, "enterprise_id", "enterprise", None),
            ("trademarks", self.trademarks, "enterprise_id", "enterprise", None),
            ("applications", self.applications, "enterprise_id", "enterprise", None),
            ("pledges", self.pledges, "application_id", "application", None),
            ("outcomes", self.outcomes, "application_id", "application", None),
            ("events", self.events, "asset_id", None, "asset_kind"),
            ("pledges", self.pledges, "asset_id", None, "asset_kind"),
            ("appraisals", self.appraisals, "asset_id", None, "asset_kind"),
        ]
        problems = []
        for table, df, column, kind, kind_column in checks:
            if kind is not None:
                bad = ~df[column].isin(known[kind])
                expected = f"an existing {kind} id"
            else:
                is_patent = (df[kind_column] == schema.AssetKind.PATENT).to_numpy()
                bad = pd.Series(
                    is_patent & ~df[column].isin(known["patent"]).to_numpy()
                    | ~is_patent & ~df[column].isin(known["trademark"]).to_numpy()
                )
                expected = "an existing patent or trademark id of that kind"
            for row in bad.to_numpy().nonzero()[0][:1000]:
                problems.append(Problem(f"{table}.{column}", expected, df[column].iat[row], int(row)))
        pledged_apps = set(self.pledges["application_id"])
        for row in (~self.applications["application_id"].isin(pledged_apps)).to_numpy().nonzero()[0][:1000]:
            problems.append(
                Problem(
                    "applications.pledged_assets",
                    "at least one pledged asset",
                    "none",
                    int(row),
                    self.applications["application_id"].iat[row],
                )
            )
        return problems
