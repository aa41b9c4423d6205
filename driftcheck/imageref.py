"""Docker image references: validation and normalisation (`redis` = `docker.io/library/redis:latest`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
REF_RE = re.compile(rf"^(?P<name>{_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>sha256:[0-9a-f]{{64}}))?$")
MAX_REF_LENGTH = 255


@dataclass(frozen=True)
class ImageRef:
    """A normalised image reference."""

    #: repository with its registry, e.g. ``docker.io/library/redis``
    repository: str
    #: tag, ``latest`` when neither a tag nor a digest was given; None for a bare digest ref
    tag: str | None
    #: ``sha256:<hex>`` when the ref pins a digest
    digest: str | None

    def __str__(self) -> str:
        text = self.repository
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def parse_ref(text: str) -> ImageRef | None:
    """Parse and normalise a reference; None when it is not a valid reference."""
    if not isinstance(text, str) or len(text) > MAX_REF_LENGTH:
        return None
    match = REF_RE.match(text)
    if match is None:
        return None
    name, tag, digest = match.group("name"), match.group("tag"), match.group("digest")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        domain, path = first, rest
    else:
        domain, path = "docker.io", name
    if domain in ("index.docker.io", "registry-1.docker.io"):
        domain = "docker.io"
    if domain == "docker.io" and "/" not in path:
        path = f"library/{path}"
    if tag is None and digest is None:
        tag = "latest"
    return ImageRef(repository=f"{domain}/{path}", tag=tag, digest=digest)


def refs_match(desired: ImageRef, observed: ImageRef) -> bool:
    """Same repository and tag; a digest is compared only when both sides carry one."""
    if desired.repository != observed.repository:
        return False
    if desired.digest is not None and observed.digest is not None:
        if desired.digest != observed.digest:
            return False
        # Both pinned to the same digest: a tag on one side only does not matter.
        return desired.tag is None or observed.tag is None or desired.tag == observed.tag
    return desired.tag == observed.tag
