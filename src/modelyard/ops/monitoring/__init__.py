"""Monitoring: drift, prediction drift, live data quality and windowed performance from the
prediction log; Prometheus metrics, alert rules and a Grafana dashboard; gated retraining.

The public functions are :func:`modelyard.ops.monitoring.drift.drift` (two DataFrames) and
:func:`modelyard.ops.monitoring.monitor.monitor` (a prediction log against a reference).
"""
