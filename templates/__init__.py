"""Jinja2 templates for every message a person reads."""

from pathlib import Path

TEMPLATE_DIR = Path(__file__).parent
