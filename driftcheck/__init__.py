"""driftcheck: a read-only drift check for Docker Compose hosts, built as a pytest suite."""

__version__ = "0.1.0"
