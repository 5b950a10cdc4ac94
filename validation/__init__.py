"""The validation suite: predicted against measured (see docs/validation.md)."""
