"""The project's own tests: tests/unit (no socket), tests/lab (the local lab), tests/plugin (pytester).

A package, so that each conftest.py gets its own module name and the shared helpers are imported
from tests.support, never from a conftest.
"""
