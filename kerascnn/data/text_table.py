"""`--data tsv:FILE` and `csv:FILE`: one text a row, its label in another column.

The column rules (--text-column, --label-column, --label-threshold, the header) are described in
kerascnn.data.text. TSV rows are split at every tab, quotes and all (the sentiment files quote
nothing and hold '' and " in their texts); CSV follows RFC 4180 (Python's csv module), so a quoted
field may hold commas and line breaks.
"""
from __future__ import annotations

import csv
import math
from typing import List, Optional, Sequence, Tuple

from kerascnn.config import DataConfig
from kerascnn.data.text_sources import Skipped, TextSource, decode_text, text_split
from kerascnn.errors import DataError, SettingError

TAB = "\t"
Row = Tuple[int, List[str]]  # (line number, fields)
MAX_CLASSES = 1000  # more distinct labels than this (or than half the rows) is a wrong column, not classes


def _lines(path: str, spec: str) -> Tuple[List[Tuple[int, str]], Skipped]:
    """(line number, decoded line) for every line that is UTF-8; the others as skipped."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise DataError(f"--data {spec}: no such file {path}.") from None
    except OSError as e:
        raise DataError(f"--data {spec}: cannot read {path}: {e.strerror}.") from None
    if not data.strip():
        raise DataError(f"--data {spec}: {path} is empty.")
    lines, bad = [], []
    for n, raw in enumerate(data.split(b"\n"), 1):
        text = decode_text(raw.rstrip(b"\r")) if n == 1 else _utf8(raw.rstrip(b"\r"))
        if text is None:
            bad.append((f"{path}:{n}", "not valid UTF-8"))
        else:
            lines.append((n, text))
    return lines, bad


def _utf8(raw: bytes) -> Optional[str]:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _rows(lines: List[Tuple[int, str]], delimiter: str, path: str, spec: str) -> List[Row]:
    """Non-blank rows, each with the number of its first line."""
    if delimiter == TAB:
        return [(n, line.split("\t")) for n, line in lines if line.strip()]
    numbers = [n for n, _ in lines]
    reader = csv.reader((line + "\n" for _, line in lines), delimiter=delimiter)  # keeps breaks in quoted fields
    rows, start = [], 0
    try:
        for fields in reader:
            if any(f.strip() for f in fields):
                rows.append((numbers[start], fields))
            start = reader.line_num
    except csv.Error as e:
        raise DataError(f"--data {spec}: line {numbers[min(start, len(numbers) - 1)]} of {path}: {e}.") from None
    return rows


def _is_number(text: str) -> bool:
    try:
        return not math.isnan(float(text))
    except ValueError:
        return False


def _is_name(value) -> bool:
    return value is not None and not str(value).strip().isdigit()


def _columns(header: Optional[List[str]], first: List[str]) -> str:
    if header is not None:
        return f"its columns are {', '.join(repr(h) for h in header)}"
    shown = ", ".join(f"{i} ({v[:20] + '...' if len(v) > 20 else v!r})" for i, v in enumerate(first, 1))
    return f"it has {len(first)} column(s): {shown}"


def _pick(value, default: int, header: Optional[List[str]], first: List[str], param: str, spec: str,
          path: str) -> int:
    """A 0-based column index from a 1-based number or a header name (`value`; None: `default`)."""
    flag = "--" + param.replace("_", "-")
    if value is None:
        return default
    if _is_name(value):
        names = [h.strip() for h in header]
        if str(value).strip() not in names:
            raise SettingError(param, f"--data {spec}: {path} has no column {value!r} ({flag}); "
                                      f"{_columns(header, first)}.")
        return names.index(str(value).strip())
    index = int(str(value).strip())
    if not 1 <= index <= len(first):
        raise SettingError(param, f"--data {spec}: {path} has no column {index} ({flag}); "
                                  f"{_columns(header, first)}.")
    return index - 1


def _looks_like_header(first: List[str], rows: Sequence[Row], text_i: int, label_i: int) -> bool:
    """A first row unlike the data below: a word label over numeric labels, or a word label (and a
    one-word text) that no other row has."""
    label, text = first[label_i].strip(), first[text_i].strip()
    below = [f[label_i].strip() for _, f in rows[1:1001] if len(f) == len(first)]
    if not below or _is_number(label):
        return False
    if all(_is_number(b) for b in below):
        return True
    return label not in below and " " not in text and len(text) <= 40 and label.replace("_", "").isalnum()


def _layout(rows: List[Row], cfg: DataConfig, path: str, delimiter: str):
    """(header or None, data rows, text column, label column), 0-based."""
    first = rows[0][1]
    spec = cfg.spec
    if len(first) < 2:
        raise SettingError("label_column", f"--data {spec}: {path} has one column; it needs a text and a label "
                                           f"column ({'tab' if delimiter == TAB else 'comma'}-separated).")
    named = _is_name(cfg.text_column) or _is_name(cfg.label_column)
    header = first if named else None
    text_i = _pick(cfg.text_column, len(first) - 1, header, first, "text_column", spec, path)
    label_i = _pick(cfg.label_column, text_i - 1 if text_i else 1, header, first, "label_column", spec, path)
    if label_i == text_i:
        raise SettingError("label_column", f"--data {spec}: --label-column and --text-column are both column "
                                           f"{text_i + 1} of {path}; {_columns(header, first)}.")
    if header is None and _looks_like_header(first, rows, text_i, label_i):
        header = first
    return header, (rows[1:] if header is not None else rows), text_i, label_i


def _classes(values: List[str], threshold: Optional[float]) -> List[str]:
    if threshold is not None:
        return ["negative", "positive"]
    unique = set(values)
    if all(_is_number(v) for v in unique):
        return sorted(unique, key=lambda v: (float(v), v))
    return sorted(unique)


def read_table(path: str, delimiter: str, cfg: DataConfig) -> TextSource:
    """A TSV or CSV file as one "train" split of texts (fit holds out --val-split of it)."""
    spec, threshold = cfg.spec, cfg.label_threshold
    lines, skipped = _lines(path, spec)
    rows = _rows(lines, delimiter, path, spec)
    if not rows:
        raise DataError(f"--data {spec}: {path} has no rows" + (" that decode as UTF-8." if skipped else "."))
    header, rows, text_i, label_i = _layout(rows, cfg, path, delimiter)
    width = len(header) if header is not None else len(rows[0][1]) if rows else 0
    column = repr(header[label_i].strip()) if header is not None else str(label_i + 1)
    texts, values, origins, left_out = [], [], [], []
    for n, fields in rows:
        where = f"{path}:{n}"
        if len(fields) != width:
            skipped.append((where, f"{len(fields)} fields where the first row has {width}"))
            continue
        text, label = fields[text_i].strip(), fields[label_i].strip()
        if not text or not label:
            skipped.append((where, "empty text" if not text else "no label"))
            continue
        if threshold is not None:
            if not _is_number(label):
                raise SettingError("label_threshold", f"--data {spec}: line {n} of {path}: label column {column} "
                                                      f"holds {label[:40]!r}, not a number; --label-threshold needs "
                                                      f"numeric ratings (pick their column with --label-column).")
            if float(label) == threshold:
                left_out.append(where)
                continue
            label = "positive" if float(label) > threshold else "negative"
        texts.append(text)
        values.append(label)
        origins.append(where)
    if not texts:
        raise DataError(f"--data {spec}: {path} has no usable rows"
                        + (f" ({skipped[0][1]}, ...)." if skipped else f" (all {len(left_out)} equal to "
                                                                              f"--label-threshold {threshold:g})."))
    class_names = _classes(values, threshold)
    _check_classes(class_names, len(texts), column, path, spec, threshold)
    index = {c: i for i, c in enumerate(class_names)}
    split = text_split(texts, [index[v] for v in values], origins)
    kind = "TSV file" if delimiter == TAB else "CSV file"
    return TextSource(spec, kind, {"train": split}, class_names, skipped, left_out)


def _check_classes(class_names: List[str], count: int, column: str, path: str, spec: str,
                   threshold: Optional[float]) -> None:
    present = len(class_names)
    if threshold is None and present > 20 and all(_is_number(c) for c in class_names):
        raise SettingError("label_threshold", f"--data {spec}: label column {column} of {path} holds {present:,} "
                                              f"different numbers; for ratings, pass --label-threshold T (below: "
                                              f"negative, above: positive), or pick the class column with "
                                              f"--label-column.")
    if threshold is None and (present > MAX_CLASSES or (present > 20 and present > count / 2)):
        raise SettingError("label_column", f"--data {spec}: label column {column} of {path} holds {present:,} "
                                           f"different values in {count:,} rows, which are not classes; pick the "
                                           f"class column with --label-column.")
    if len(class_names) < 2 and threshold is None:
        raise DataError(f"--data {spec}: label column {column} of {path} holds one class ({class_names[0]!r}); a "
                        f"classifier needs two or more (pick the column with --label-column).")


__all__ = ["read_table"]
