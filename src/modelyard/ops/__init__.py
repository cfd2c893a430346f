"""Ops section: registry, promotion gate, serving, monitoring, packaging."""
