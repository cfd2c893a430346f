"""The step engine. It knows nothing of ML: steps, the DAG, the artifact store and cache keys,
the runner and its events."""
