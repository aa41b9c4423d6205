"""Helpers shared by the project's tests (conftest.py files hold only fixtures).

tests.support.unit: captured inspect JSON, module builder, a fake transport;
tests.support.lab: running the suite against the lab and reading what the lab host saw;
tests.support.hostile: the hostile-manifest corpus (unit and lab tests).
"""
