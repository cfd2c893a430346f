"""Self-contained HTML (and JSON) renderings of the results of the other sections."""
