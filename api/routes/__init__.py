"""The service's routes, one module per resource; each route validates, calls the domain (underwriting,
valuation.documents), stores through lending.records and answers (api.views)."""
