"""Tests of the parsers.workbook package."""
