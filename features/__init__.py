"""Feature pipeline: data model, synthetic portfolio, real-data adapters and model inputs."""
