"""Federated learning: aggregating updates, scoring contributions, sharing the reward pool."""
