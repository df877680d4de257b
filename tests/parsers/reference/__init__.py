"""Tests of the parsers.reference package."""
