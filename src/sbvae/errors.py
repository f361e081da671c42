"""Errors a user can cause. The CLI turns each into one line on stderr and exit code 2."""


class UserError(Exception):
    """Bad input from the user: a config, a path, a file. Never a bug in sbvae."""


class ConfigError(UserError):
    """An invalid configuration file, key, value or override."""


class CheckpointError(UserError):
    """A run folder or checkpoint that is missing, corrupt or incompatible."""
