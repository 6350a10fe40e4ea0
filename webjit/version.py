"""The version of webjit (also in pyproject.toml)."""
VERSION = "0.1.0"
