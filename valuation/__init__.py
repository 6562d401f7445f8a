"""ipcredit valuation package."""
