"""Configuration: the settings a service runs on (dataclasses, loader, built-in defaults) and the
clock. A leaf: it imports nothing of the project but the reference data."""
