"""Render a `Summary` as an aligned text table, Markdown, JSON or CSV.

    format_summary(summary, "table")

Tables print exact counts with thousands separators and the totals also abbreviated (K, M, G).
JSON carries everything (`Summary.to_dict()`); CSV has one line per layer row and no totals.
"""
from __future__ import annotations

import csv
import io
import json
import math
from typing import Callable, Dict, List, Sequence, Tuple

from kerascnn.analysis.summary import LayerRow, Summary, Totals, number

_HEADERS = ("Layer", "Type", "Output", "Params", "MACs", "RF", "Jump")
_RIGHT = (False, False, False, True, True, True, True)  # numbers right-aligned


def human(n: int) -> str:
    """12,345,678 -> "12.3 M": three significant digits and K / M / G."""
    for unit, scale in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(n) >= scale:
            value = n / scale  # 1 <= |value| < 1000: keep three significant digits, "7.00" included
            return f"{value:.{max(0, 2 - int(math.log10(abs(value))))}f} {unit}"
    return str(n)


def volume(shape) -> str:
    """(55, 55, 96) -> "55x55x96"; unknown sizes print as "?"."""
    return "x".join("?" if d is None else str(d) for d in shape)


def _axes(values) -> str:
    # One number for a square field, "h x w" otherwise, "-" without image axes.
    values = [number(v) if hasattr(v, "denominator") else v for v in values]
    if not values:
        return "-"
    text = [f"{v:g}" if isinstance(v, float) else str(v) for v in values]
    return text[0] if len(set(text)) == 1 else "x".join(text)


def _cells(row: LayerRow) -> Tuple[str, ...]:
    return (row.name, row.kind, volume(row.output_shape), f"{row.params:,}", f"{row.macs:,}",
            _axes(row.rf), _axes(row.jump))


def _align(lines: Sequence[Sequence[str]], right: Sequence[bool], sep: str = "  ") -> List[str]:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return [sep.join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(line, widths, right)).rstrip()
            for line in lines]


def _title(summary: Summary) -> str:
    if summary.example.startswith("sentence"):  # a text model's input is one string: no shape to show
        return f"{summary.name} (input: one {summary.example})"
    inputs = ", ".join(volume(s) for s in summary.input_shapes)
    return f"{summary.name} (input {inputs})"


def _totals_text(t: Totals, example: str = "image") -> List[str]:
    return [f"Total params: {t.params:,} ({human(t.params)}): trainable {t.trainable_params:,}, "
            f"non-trainable {t.non_trainable_params:,}",
            f"Total multiply-adds: {t.macs:,} ({human(t.macs)}) per {example}"]


def _group_lines(summary: Summary) -> List[Tuple[str, ...]]:
    return [(label, f"{t.params:,}", f"{t.macs:,}", human(t.macs)) for label, t in summary.groups.items()]


def _footer(summary: Summary) -> List[str]:
    lines = list(summary.notes)
    if summary.uncounted:
        lines.append(f"Multiply-adds not counted (no rule for these layers): {', '.join(summary.uncounted)}")
    return lines


def format_table(summary: Summary) -> str:
    lines = _align([_HEADERS] + [_cells(r) for r in summary.rows], _RIGHT)
    rule = "-" * max(len(line) for line in lines)
    out = [_title(summary), rule, lines[0], rule, *lines[1:], rule, *_totals_text(summary.totals, summary.example)]
    if summary.groups:
        out += ["", *_align([("Branch", "Params", "MACs", "")] + _group_lines(summary), (False, True, True, True))]
    footer = _footer(summary)
    return "\n".join(out + ([""] + footer if footer else [])) + "\n"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> List[str]:
    bar = "|" + "|".join("---:" if r else "---" for r in right) + "|"
    return ["| " + " | ".join(header) + " |", bar] + ["| " + " | ".join(row) + " |" for row in rows]


def format_markdown(summary: Summary) -> str:
    out = [f"### {_title(summary)}", ""]
    out += _md_table(_HEADERS, [_cells(r) for r in summary.rows], _RIGHT)
    out += [""] + [f"- {line}" for line in _totals_text(summary.totals, summary.example)]
    if summary.groups:
        out += [""] + _md_table(("Branch", "Params", "MACs", ""), _group_lines(summary), (False, True, True, True))
    footer = _footer(summary)
    return "\n".join(out + ([""] + [f"> {line}" for line in footer] if footer else [])) + "\n"


def format_json(summary: Summary) -> str:
    return json.dumps(summary.to_dict(), indent=2) + "\n"


def format_csv(summary: Summary) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("name", "type", "output_shape", "params", "trainable_params", "macs", "rf", "jump", "inputs"))
    for r in summary.rows:
        writer.writerow((r.name, r.kind, volume(r.output_shape), r.params, r.trainable_params, r.macs,
                         "x".join(map(str, r.rf)), "x".join(str(number(j)) for j in r.jump), ";".join(r.inputs)))
    return buffer.getvalue()


FORMATS: Dict[str, Callable[[Summary], str]] = {
    "table": format_table,
    "markdown": format_markdown,
    "json": format_json,
    "csv": format_csv,
}


def format_summary(summary: Summary, fmt: str = "table") -> str:
    """`summary` as text in one of FORMATS: "table", "markdown", "json", "csv"."""
    if fmt not in FORMATS:
        raise ValueError(f"Unknown summary format. Expected one of {sorted(FORMATS)}. Received: fmt={fmt!r}")
    return FORMATS[fmt](summary)
