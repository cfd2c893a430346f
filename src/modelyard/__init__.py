"""modelyard: from a table of raw data to a tested, versioned, served and monitored model."""
