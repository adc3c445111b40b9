"""8-bit mu-law companding in float64 numpy (ITU-T G.711's curve with mu = 255), the one copy of the
formulas: the audio data (kerascnn.data.audio's encode and decode) and the WaveNet's generation
(kerascnn.models.wavenet's period taps) both use it. NumPy only, so importing it stays light."""
from __future__ import annotations

import numpy as np

MU = 255  # 8-bit mu-law: MU + 1 = 256 classes


def compand(x, mu: int = MU) -> np.ndarray:
    """Samples in [-1, 1] (clipped there) to companded values in [-1, 1]."""
    x = np.clip(np.asarray(x, np.float64), -1.0, 1.0)
    return np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)


def expand(y, mu: int = MU) -> np.ndarray:
    """Companded values in [-1, 1] back to samples: the inverse of `compand`."""
    y = np.asarray(y, np.float64)
    return np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu


def level(classes, mu: int = MU) -> np.ndarray:
    """Class k of 0..mu to its companded level 2k/mu - 1."""
    return 2.0 * np.asarray(classes, np.float64) / mu - 1.0


__all__ = ["MU", "compand", "expand", "level"]
