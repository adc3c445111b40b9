"""Hiding what C libraries write to the terminal, for the CLI's default (quiet) mode; --debug shows it.

TensorFlow's C++ start-up lines (absl's "All log messages before absl::InitializeLog()", oneDNN, the
CUDA probe) are written before absl reads TF_CPP_MIN_LOG_LEVEL, and libjpeg's "Corrupt JPEG data"
warnings come from TF's decoders in tf.data threads: both go straight to file descriptor 2, past
Python's `sys.stderr` and its warning filters, so only pointing the descriptor elsewhere hides them.
Python's own output (kerascnn's log lines, warnings, click's messages) keeps the real stderr.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from typing import Iterator, List, Tuple


def _is_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False  # click's CliRunner, pytest's capture: Python-level streams, not descriptor 2


def _handlers_on(stream) -> List[logging.StreamHandler]:
    loggers = [logging.getLogger(), *(lg for lg in logging.Logger.manager.loggerDict.values()
                                      if isinstance(lg, logging.Logger))]
    return [h for lg in loggers for h in lg.handlers
            if isinstance(h, logging.StreamHandler) and h.stream is stream]


@contextlib.contextmanager
def native_stderr_hidden() -> Iterator[None]:
    """File descriptor 2 goes to /dev/null for the block; `sys.stderr` and the log handlers that
    write to it get a copy of the real descriptor meanwhile, so Python's own lines still show."""
    python_stderr = sys.stderr
    python_stderr.flush()
    saved = os.dup(2)
    kept = None
    moved: List[Tuple[logging.StreamHandler, object]] = []
    if _is_fd2(python_stderr):
        kept = open(os.dup(saved), "w", buffering=1, encoding=getattr(python_stderr, "encoding", None),
                    errors="backslashreplace")
        moved = [(h, h.setStream(kept)) for h in _handlers_on(python_stderr)]
        sys.stderr = kept
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        if kept is not None:
            kept.flush()
            sys.stderr = python_stderr
            for handler, stream in moved:
                handler.setStream(stream)
            # A handler made in the block (TensorFlow's logger is made on first use, e.g. by a
            # deprecation warning during the import) took `kept` as sys.stderr: give it the real one.
            for handler in _handlers_on(kept):
                handler.setStream(python_stderr)
            kept.close()
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def decoder_messages_hidden() -> Iterator[None]:
    """Reading damaged images: libjpeg's "Corrupt JPEG data" lines and Pillow's UserWarnings (e.g.
    "Truncated File Read" on a broken EXIF block) hidden; the skipped files are summarised anyway."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        with native_stderr_hidden():
            yield
