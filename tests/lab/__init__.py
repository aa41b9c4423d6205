"""The lab tests: the suite run as a user runs it (a subprocess) against the real lab."""
