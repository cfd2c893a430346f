"""The prediction server: a contract-checked FastAPI app over a registered model.

Modules: :mod:`.request` (request schema and per-record checker from the data contract),
:mod:`.fastpath` (exact DataFrame-free features), :mod:`.model` (loading, agreement, reload),
:mod:`.predlog` (the prediction log and its schema), :mod:`.metrics` (Prometheus),
:mod:`.app` (routes), :mod:`.server` (uvicorn / granian), :mod:`.commands` (CLI).
Nothing heavy is imported here.
"""
