"""The run's policy on a verdict: --strict-images and waivers. Pure: no pytest, no I/O."""

from __future__ import annotations

from datetime import date

from driftcheck import codes
from driftcheck.manifest import Module, Waiver
from driftcheck.registry import Check
from driftcheck.verdict import Change, Verdict


def active_waiver(module: Module, check: str, today: date) -> Waiver | None:
    """The waiver that silences a check today (a skip), or None."""
    waiver = module.waiver(check)
    return waiver if waiver is not None and not waiver.expired(today) else None


def apply_policy(check: Check, module: Module | None, verdict: Verdict, *, strict_images: bool,
                 today: date) -> Verdict:
    """The verdict as the run reports it.

    With --strict-images the check's strict warnings (an image whose digest could not be proven
    or inspected) are drift. A waiver past its `until` date is itself drift, IGNORE_EXPIRED, so
    waivers cannot rot silently.
    """
    changes, warnings = list(verdict.changes), list(verdict.warnings)
    if strict_images:
        strict = [w for w in warnings if w.code in check.strict]
        warnings = [w for w in warnings if w.code not in check.strict]
        digest = module.image_digest if module is not None else None
        changes += [Change(w.code, "image.digest", digest, None, w.message) for w in strict]
    waiver = module.waiver(check.name) if module is not None else None
    if waiver is not None and waiver.expired(today):
        changes.append(Change(codes.IGNORE_EXPIRED, f"ignore[{waiver.check}].until", str(waiver.until),
                              today.isoformat(), f"the waiver expired; its reason was: {waiver.reason}"))
    return Verdict(tuple(changes), tuple(warnings))
