"""Reading a local file the run was pointed at, bounded: a regular file of at most a cap, never more.

A file a run reads itself (module.yaml, hosts.yaml, a --compare-with plan; and any other, such
as key, known_hosts and ssh config files) is read with read_bounded: it opens without blocking (a
FIFO would block in open), refuses anything that is not a regular file before reading a byte of it (a FIFO,
/dev/zero, a folder), and reads at most cap + 1 bytes, so a 4 GiB file costs cap + 1 bytes of
memory and is refused. check_bounded is the same test for a file that another program reads
(a compose file and its .env, which docker-compose opens).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class FileRefused(ValueError):
    """The file is not a regular file, or larger than the cap; the message says which, in words."""


class NotRegular(FileRefused):
    """A FIFO, a device, a folder...: refused before a byte of it is read; `mode` is its st_mode."""

    def __init__(self, mode: int):
        self.mode = mode
        super().__init__(f"is {_kind(mode)}, not a regular file")


class TooLarge(FileRefused):
    """More than the cap (seen by fstat, or grown while it was read)."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def size_text(size: int) -> str:
    """A byte count as a message shows it: 262144 bytes is 256 KiB."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


def _refuse_mode(mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise NotRegular(mode)


def _refuse_size(size: int, cap: int, grew: bool = False) -> None:
    if size > cap:
        what = f"grew past {size_text(cap)} while it was read" if grew else f"is {size} bytes"
        raise TooLarge(f"{what}; expected at most {size_text(cap)}")


def read_bounded(path: Path | str, cap: int) -> bytes:
    """The bytes of a regular file of at most cap bytes.

    Raises FileRefused for anything else (nothing of it read, or at most cap + 1 bytes), and
    OSError when the file cannot be opened or read (missing, permission denied).
    """
    # O_NONBLOCK: open() of a FIFO with no writer would wait forever; for a regular file the flag
    # changes nothing. O_NOCTTY: a terminal device never becomes the controlling terminal.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        _refuse_mode(info.st_mode)
        _refuse_size(info.st_size, cap)
        chunks: list[bytes] = []
        left = cap + 1  # one byte more than allowed tells a file that grew since fstat
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    _refuse_size(len(data), cap, grew=True)
    return data


def check_bounded(path: Path | str, cap: int) -> None:
    """Refuse (FileRefused) a path that is not a regular file of at most cap bytes, without opening it.

    For a file another program reads (docker-compose), so it never meets a FIFO or a device; OSError
    when it cannot be looked at.
    """
    info = os.stat(path)
    _refuse_mode(info.st_mode)
    _refuse_size(info.st_size, cap)
