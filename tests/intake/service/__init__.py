"""Tests of the intake.service package."""
