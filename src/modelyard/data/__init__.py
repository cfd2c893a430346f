"""Data section: sources, the data contract, validation, profile and quality."""
