"""The HTTP service: app assembly, dependencies, schemas (types and shapes), routes (thin), errors in one
shape, serve and up. Computes nothing itself: the routes call underwriting and valuation."""
