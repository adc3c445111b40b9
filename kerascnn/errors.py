"""User-facing errors.

`UserError` carries a one-line message that names the file, flag or spec at fault and says what to
do. The CLI prints it without a traceback (exit 1); anything else is a bug and keeps its traceback
under `--debug`.
"""


class UserError(Exception):
    """A problem the user can fix: bad input, missing data, unavailable download."""


class DataError(UserError):
    """A data spec that cannot be read (missing files, no network, empty folders)."""


class ModelError(UserError):
    """An unknown model name or an input shape / weights file the model cannot take."""
