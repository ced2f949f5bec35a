"""A report table and its three renderings: CSV (RFC 4180, CRLF like the published files), Markdown, LaTeX (booktabs).

A `Table` carries two frames of strings: `csv` (the published CSV's columns and number style, so a
reference-mode table can be compared with the published file cell for cell, even byte for byte) and
`display` (what a paper prints: two decimals, signed deltas, 35.4k, 14.5x; missing cells "—").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..io import write_text


@dataclass
class Table:
    """One table of the report: files under <name>.*, one line of context, the paper's claim it bears on."""

    name: str
    title: str
    context: str
    csv: pd.DataFrame
    display: pd.DataFrame
    claim: str = ""
    source: str = ""
    notes: list[str] = field(default_factory=list)


def to_csv(df: pd.DataFrame) -> str:
    """CSV text of a frame of strings (no index, CRLF line ends, quotes only where needed)."""
    return df.to_csv(index=False, lineterminator="\r\n")


def _numeric(cell: str) -> bool:
    s = cell.replace("+", "").replace("-", "").replace("k", "").replace("x", "").replace("%", "").replace(".", "")
    return s.isdigit()


def _align(df: pd.DataFrame) -> list[str]:
    """'r' for columns whose non-missing cells all look numeric, else 'l'."""
    out = []
    for c in df.columns:
        cells = [str(v) for v in df[c] if str(v) not in ("", "—")]
        out.append("r" if cells and all(_numeric(v) for v in cells) else "l")
    return out


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub pipe table ('|' in cells escaped), numbers right-aligned."""
    esc = lambda v: str(v).replace("|", "\\|")  # noqa: E731
    head = "| " + " | ".join(esc(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---:" if a == "r" else "---" for a in _align(df)) + "|"
    body = ["| " + " | ".join(esc(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "—": "---", "Δ": r"$\Delta$"}


def tex_escape(text: str) -> str:
    """Escape LaTeX's special characters."""
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def to_latex(df: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs table (\\toprule / \\midrule / \\bottomrule), caption and label."""
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{tex_escape(caption)}}}", rf"\label{{tab:{label}}}",
             rf"\begin{{tabular}}{{{''.join(_align(df))}}}", r"\toprule",
             " & ".join(tex_escape(c) for c in df.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(tex_escape(v) for v in row) + r" \\" for row in df.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(table: Table, out_dir: str | Path) -> list[Path]:
    """<out_dir>/<name>.csv, .md (title, context, table, notes) and .tex; returns the three paths."""
    out = Path(out_dir)
    md = [f"### {table.title}", "", table.context, "", to_markdown(table.display)]
    md += [f"- {n}" for n in table.notes]
    return [write_text(out / f"{table.name}.csv", to_csv(table.csv)),
            write_text(out / f"{table.name}.md", "\n".join(md).rstrip("\n") + "\n"),
            write_text(out / f"{table.name}.tex", to_latex(table.display, table.title, table.name))]
