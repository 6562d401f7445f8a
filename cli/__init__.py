"""The `ipcredit` command line."""
