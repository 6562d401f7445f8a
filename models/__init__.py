"""MLflow: the store, tracked training with its gate, the registry, pyfunc wrappers, model cards, drift."""
