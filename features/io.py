"""Reading and writing flat tables; the format follows the file extension (CSV or Parquet)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

FORMATS = (".csv", ".parquet")


def check_format(path: str | Path) -> str:
    """The table format a path names; refused unless it ends in .csv or .parquet."""
    return _suffix(Path(path))


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"{path}: expected a file ending in .csv or .parquet; got {suffix or 'no extension'!r}"
        )
    return suffix


def read_table(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    suffix = _suffix(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    return pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    path = Path(path)
    suffix = _suffix(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    return path
