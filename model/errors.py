"""Error types shared by the numerics modules (kept apart so no module imports another for its errors)."""


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the field."""
