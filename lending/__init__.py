"""The loan workflow's records: institutions and their API keys, applications, reviews and valuations.

Knows nothing of HTTP: `api/` authenticates with `keys.authenticate`, then calls `records` inside a
`db.transaction`. The functions of `keys` and `records` take a session and never commit; the caller's
transaction decides, so that everything one request writes lands together or not at all.

- `settings`: the one typed settings object (DATABASE_URL, IPCREDIT_ENV, IPCREDIT_HOME).
- `db`: engines, Alembic migrations run from code, sessions and transactions.
- `tables`: the schema (SQLAlchemy 2 typed declarative).
- `keys`: API keys, stored hashed; `Principal` is who is calling.
- `records`: save, read, list and review applications; save and read valuations; the access rules.

See docs/records.md.
"""
