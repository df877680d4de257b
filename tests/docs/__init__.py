"""The documentation users read, checked against the code."""
