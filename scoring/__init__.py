"""Scoring: the "IP + credit" PD model and its scorecard challenger, the score scale, grades and the decision
policy's cut-offs, reason codes and the validation report. A peer of valuation: neither imports the other."""
