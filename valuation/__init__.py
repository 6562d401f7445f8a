"""Valuation: each patent's and trademark's value in CNY with its interval, the income-approach cross-check,
the GB/T 42748 scores, the bundle's and the pledge's value. A peer of scoring: neither imports the other."""
