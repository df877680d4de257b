"""Builders of realistic test inputs (spreadsheets as bytes), shared by every test module."""
