"""Tests of the parsers.documents package."""
