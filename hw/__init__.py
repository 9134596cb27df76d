"""neurosim's hardware side: workload tracing, the device catalog, cost models, the systolic simulator."""
