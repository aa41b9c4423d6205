"""Hypothesis profiles for the project's tests: `quick` by default, `thorough` in `make test`.

HYPOTHESIS_PROFILE=thorough (or --hypothesis-profile=thorough) selects the thorough one. A test that
needs more examples than others asks for a multiple of the profile's count, never a fixed number.
"""

from __future__ import annotations

import os

from hypothesis import settings

#: the thorough profile's count is the one the property tests were written for (make test, CI)
settings.register_profile("thorough", max_examples=300)
#: a few seconds for the whole unit run, for the edit-test loop
settings.register_profile("quick", max_examples=30)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or "quick")
