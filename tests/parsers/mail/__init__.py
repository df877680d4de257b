"""Tests of the parsers.mail package."""
