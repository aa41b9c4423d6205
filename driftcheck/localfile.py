"""Reading a local file the inventory names (a key, a known_hosts, an ssh config): a regular file, bounded.

A path can name a directory, a FIFO (whose open() blocks until a writer comes), a device
(`/dev/zero` never ends) or a file of any size: it is read by boundedread.read_bounded (opened
without blocking, checked on the open descriptor, at most its cap plus one byte), and what is
refused is said in the words of the inventory's messages.
"""

from __future__ import annotations

import stat

from driftcheck.boundedread import NotRegular, TooLarge, read_bounded

#: what a path that is not a regular file is, in words
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class LocalFileError(ValueError):
    """A local file that cannot be used; str() is the reason, to follow the file's name in a message."""


def read_local_file(path: str, cap: int) -> bytes:
    """The bytes of a regular file of at most cap bytes (boundedread); raises LocalFileError saying why not."""
    try:
        return read_bounded(path, cap)
    except NotRegular as exc:
        kind = next((word for test, word in _KINDS if test(exc.mode)), "not a regular file")
        raise LocalFileError(f"is {kind}; expected a regular file") from None
    except TooLarge:
        raise LocalFileError(f"is larger than {_size(cap)}; expected a small text file") from None
    except OSError as exc:
        raise LocalFileError(f"cannot be read: {exc.strerror or type(exc).__name__}") from exc


def read_local_text(path: str, cap: int) -> str:
    """read_local_file, decoded as UTF-8; a byte that is not UTF-8 is a LocalFileError naming its line."""
    data = read_local_file(path, cap)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise LocalFileError(f"is not UTF-8 text (line {line}, byte {exc.start}); is it the right file?") from exc


def _size(cap: int) -> str:
    return f"{cap // (1024 * 1024)} MiB" if cap >= 1024 * 1024 and cap % (1024 * 1024) == 0 else f"{cap} bytes"
