"""ipcredit api package."""
