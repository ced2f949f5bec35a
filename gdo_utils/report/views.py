"""Notebook views of a built report: a table or a figure with its context and the paper's claim beside it.

Each function returns one object Jupyter displays (Markdown for tables, an Image-with-caption for figures),
so a notebook cell stays one call. A report that was not built (None) says why instead.
"""
from __future__ import annotations

from IPython.display import HTML, Markdown

from .build import Report
from .render import to_markdown

NOT_BUILT = ("*No run-mode report: no trajectory table exists (outputs/<run>/eval/trajectory.parquet; the "
             "evaluation stage writes it). The reference-mode version is shown above.*")
SOURCES_TITLE = "## What the papers publish and what the kit can regenerate"


def _head(title: str, context: str, claim: str) -> str:
    out = f"**{title}** — {context}\n\n"
    return out + (f"> **Paper's claim:** {claim}\n\n" if claim else "")


def table(report: Report | None, name: str) -> Markdown:
    """The table as Markdown with its context, claim and notes (and how many cells the run filled)."""
    if report is None:
        return Markdown(NOT_BUILT)
    t = report.tables[name]
    text = _head(t.title, t.context, t.claim)
    if name in report.filled:
        filled, total = report.filled[name]
        text += (f"*The run fills {filled} of {total} cells; the rest are empty (—, or why: not trained, undefined), "
                 "never taken from the paper.*\n\n")
    text += to_markdown(t.display) + "".join(f"\n- {n}" for n in t.notes)
    text += f"\n- source: {t.source}" if t.source else ""
    return Markdown(text)


def figure(report: Report | None, name: str) -> HTML | Markdown:
    """The saved PNG inline (embedded, so the executed notebook keeps it) under its context and claim."""
    import base64
    import html

    if report is None:
        return Markdown(NOT_BUILT)
    s = report.figures[name]
    png = next(p for p in s.paths if p.suffix == ".png")
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    claim = f"<blockquote><b>Paper's claim:</b> {html.escape(s.claim)}</blockquote>" if s.claim else ""
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in [*s.notes, *([f"source: {s.source}"] if s.source else [])])
    return HTML(f"<p><b>{html.escape(s.title)}</b> — {html.escape(s.context)}</p>{claim}"
                f"<img src='data:image/png;base64,{data}' style='max-width:100%'/>" + (f"<ul>{notes}</ul>" if notes else ""))


def sources(report: Report) -> Markdown:
    """The report's section on what the papers publish, what the kit regenerates (with sources) and what is missing."""
    text = report.path.read_text()
    start = text.index(SOURCES_TITLE) + len(SOURCES_TITLE)
    return Markdown(text[start:text.index("\n## ", start)].strip())


def outline(report: Report) -> Markdown:
    """Where the report is and its sections (the file itself is long: open it rather than print it here)."""
    heads = [line for line in report.path.read_text().splitlines() if line.startswith(("## ", "### "))]
    items = [("- " if h.startswith("## ") else "  - ") + h.lstrip("#").strip() for h in heads]
    return Markdown(f"`{report.path}` ({report.mode} mode), {len(report.tables)} tables and {len(report.figures)} "
                    "figures:\n\n" + "\n".join(items))


def inconsistencies(report: Report) -> Markdown:
    """The disagreements found in the published material, as a list."""
    return Markdown("\n".join(f"- {x}" for x in report.inconsistencies) or "none found")
