"""ipcredit models package."""
