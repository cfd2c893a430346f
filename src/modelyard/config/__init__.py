"""The typed schema of modelyard.yaml, its loading, environment expansion and clear errors."""
