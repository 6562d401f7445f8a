"""The service's routes, one module per resource; each route validates, calls the domain (api.compute),
stores through lending.records and answers (api.views)."""
