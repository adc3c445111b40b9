"""User-facing errors.

`UserError` carries a one-line message that names the file, parameter or spec at fault and says what
to do. The CLI prints it without a traceback; anything else is a bug and keeps its traceback under
`--debug`.

* `SettingError`: a bad *value* of a setting (an unknown model, data, weights or layer name, a value
  out of range, a builder argument the model does not take). It names the library parameter
  (`param="batch_size"`); the CLI turns that into its flag (`--batch-size`) and exits 2, like any
  usage error. These are checked before any data or model is loaded.
* Other `UserError`s are failures while running (a download that cannot happen offline, a corrupt
  file found mid-way): exit 1.
"""
from __future__ import annotations

from typing import Optional


class UserError(Exception):
    """A problem the user can fix: bad input, missing data, unavailable download."""


class SettingError(UserError, ValueError):
    """A bad value of the setting `param` (a library parameter name such as "model" or "data")."""

    def __init__(self, param: Optional[str], message: str):
        super().__init__(message)
        self.param = param


class DataError(UserError):
    """A data spec that cannot be read (missing files, no network, empty folders)."""


class ModelError(UserError):
    """An input shape / weights file the model cannot take, or a model that cannot be built."""


class UnknownNameError(SettingError, ModelError, DataError):
    """An unknown model, data, weights or layer name: a SettingError that older `except ModelError`
    and `except DataError` handlers still catch."""


__all__ = ["DataError", "ModelError", "SettingError", "UnknownNameError", "UserError"]
