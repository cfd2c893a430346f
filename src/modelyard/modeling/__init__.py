"""Modeling section: tasks and metrics, splits, the model zoo, exploration, tuning, evaluation."""
