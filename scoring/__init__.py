"""ipcredit scoring package."""
