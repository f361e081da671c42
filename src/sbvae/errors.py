"""Errors a user can cause. The CLI turns each into one line on stderr and exit code 2."""


class UserError(Exception):
    """Bad input from the user: a config, a path, a file. Never a bug in sbvae."""


class ConfigError(UserError):
    """An invalid configuration file, key, value or override."""


class CheckpointError(UserError):
    """A run folder or checkpoint that is missing, corrupt or incompatible."""


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its type name when the message is empty."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
