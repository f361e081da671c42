"""Errors a user can cause. The CLI turns each into one line on stderr and exit code 2."""

from __future__ import annotations

import errno
import os

# What the machine, not sbvae, gets wrong: a full disk, a read-only or forbidden folder, a name
# too long, a failing device.
ENVIRONMENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG, errno.EIO, errno.EFBIG}
)


class UserError(Exception):
    """Bad input from the user: a config, a path, a file. Never a bug in sbvae."""


class ConfigError(UserError):
    """An invalid configuration file, key, value or override."""


class CheckpointError(UserError):
    """A run folder or checkpoint that is missing, corrupt or incompatible."""


class DivergenceError(UserError):
    """Training that went to infinity or NaN, almost always from the learning rate or sigma."""


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its type name when the message is empty."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def printable(text: str) -> str:
    """``text`` with every character that is not printable (a newline, a tab, a terminal escape, a
    byte of a file name that did not decode) written as its Python escape (``\\n``, ``\\x1b``): a
    message stays one line, and its own, whatever path or value it quotes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def environment_fault(exc: BaseException) -> str | None:
    """One line for an exception caused, directly or down its chain of causes, by the machine
    (see ``ENVIRONMENT_ERRNOS``): ``"FILE: No space left on device"``; None for anything else.
    Libraries wrap such faults (torch's writer raises a RuntimeError from the OSError)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in ENVIRONMENT_ERRNOS:
            reason = current.strerror or os.strerror(current.errno)
            return f"{current.filename}: {reason}" if current.filename else reason
        current = current.__cause__ or current.__context__
    return None
