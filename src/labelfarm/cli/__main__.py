"""``python -m labelfarm.cli``."""

from labelfarm.cli import app

app()
