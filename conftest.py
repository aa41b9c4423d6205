"""Loads the driftcheck plugin; everything else lives in driftcheck/."""

pytest_plugins = ["driftcheck.plugin"]
