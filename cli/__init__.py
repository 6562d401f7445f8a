"""ipcredit cli package."""
