"""REPORT.md: every table and figure with one line of context and the paper's claim beside it, the published
inconsistencies, and the provenance of the numbers (params hash, git revision, versions, demo or not)."""
from __future__ import annotations

import os
from pathlib import Path

from .render import Table, to_markdown


def _rel(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()


def provenance_lines(prov: dict) -> list[str]:
    """The provenance section as Markdown bullets."""
    lines = [f"- mode: **{prov['mode']}**", f"- params: `{prov['params_file']}` (hash `{prov['params_hash']}`)",
             f"- git revision: `{prov['git_revision']}`",
             "- versions: " + ", ".join(f"{k} {v}" for k, v in prov["versions"].items() if v)]
    if prov.get("trajectory"):
        t = prov["trajectory"]
        lines.append(f"- trajectory: `{t['path']}` (sha256 `{t['sha256'][:16]}`), {t['rows']} rows, subsets "
                     f"{', '.join(t['subsets']) or 'none'}; engines {', '.join(t['engines'])}; contracts "
                     f"{', '.join(t['contracts'])}")
    lines.append(f"- published numbers: package data `gdo_utils/report/paper_numbers/` ({prov['published_note']})")
    lines.append(f"- **which numbers are demo numbers:** {prov['demo_note']}")
    return lines


def table_section(t: Table, base: Path, files: list[Path], filled: tuple[int, int] | None) -> list[str]:
    """One table: title, context, claim, evidence (the table), notes, file links."""
    out = [f"### {t.title}", "", t.context, ""]
    if t.claim:
        out += [f"> **Paper's claim:** {t.claim}", ""]
    if filled is not None:
        out += [f"The run fills {filled[0]} of {filled[1]} cells; the others are empty (—, or the reason: not trained, "
                "undefined), never taken from the paper.", ""]
    out += [to_markdown(t.display).rstrip("\n"), ""]
    out += [f"- {n}" for n in t.notes]
    if t.source:
        out.append(f"- source: {t.source}")
    out += ["- files: " + ", ".join(f"[{f.suffix[1:]}]({_rel(f, base)})" for f in files), ""]
    return out


def figure_section(spec, base: Path) -> list[str]:
    """One figure: title, context, claim, the PNG inline, the PDF linked."""
    png = next(p for p in spec.paths if p.suffix == ".png")
    pdf = next(p for p in spec.paths if p.suffix == ".pdf")
    out = [f"### {spec.title}", "", spec.context, ""]
    if spec.claim:
        out += [f"> **Paper's claim:** {spec.claim}", ""]
    out += [f"![{spec.title}]({_rel(png, base)})", ""]
    out += [f"- {n}" for n in getattr(spec, "notes", [])]
    if getattr(spec, "source", ""):
        out.append(f"- source: {spec.source}")
    out += [f"- files: [png]({_rel(png, base)}), [pdf]({_rel(pdf, base)})", ""]
    return out


PUBLISHED = (
    "**GDO paper text** (arXiv 2603.12478): one table - the four benchmarks with Uni-10x, GDO, delta, peak match and "
    "reduction. The kit ships it exactly and recomputes the peak match and reduction of MVBench, VideoMME and MLVU.",
    "**GDO release README** (github.com/rujiewu/GDO): the profiles, temporal-gains, subtask-group and ablation tables "
    "(exact), the convergence figure (its points digitised: approximate), the frontier figure (drawn from the "
    "profiles table), the MVBench heatmap (its cell labels: exact at 0.5 pp) and the method overview (redrawn as "
    "panels).",
    "**OFA abstract** (arXiv 2605.26761): the headline only - 15% of the data, Rel 98.3 on LLaVA-665K and 110.6 "
    "transferred to Vision-Flan-186K. The model column of that table is not in the abstract.",
    "**VisNec** (arXiv 2603.01195, same authors and protocol): full-data and eleven baseline rows on the ten image "
    "benchmarks for both pools (exact). They are VisNec's rows; that the OFA paper compares with the same rows is "
    "not known from its abstract.",
)


def availability_lines(tables, specs) -> list[str]:
    """What the papers publish, what the kit regenerates (each table and figure with its source), what is missing."""
    from .published import UNAVAILABLE

    out = ["Where each published number comes from:", ""] + [f"- {x}" for x in PUBLISHED] + [""]
    out += ["What this report regenerates, each with its source and exactness:", "", "| item | source |", "|---|---|"]
    out += [f"| table `{t.name}`: {t.title} | {t.source.replace('|', '/')} |" for t in tables]
    out += [f"| figure `{s.name}`: {s.title} | {getattr(s, 'source', '').replace('|', '/')} |" for s in specs]
    out += ["", "Known to exist but not available to the kit (nothing here stands in for them):", ""]
    out += [f"- {x}" for x in UNAVAILABLE] + [""]
    return out


def report_markdown(run_name: str, prov: dict, sections: list[tuple[str, list[str]]], inconsistencies: list[str],
                    notes: list[str]) -> str:
    """Assemble REPORT.md from already rendered sections."""
    out = [f"# Report: {run_name} ({prov['mode']} mode)", "",
           "Every table and figure of the GDO and OFA papers, regenerated by `gdo_utils.report`"
           + (" from the published numbers alone." if prov["mode"] == "reference" else
              " from this run's trajectory, with the published value and the difference beside every cell."), ""]
    out += [f"- {n}" for n in notes]
    out += ["", "## Provenance", "", *provenance_lines(prov), ""]
    for title, body in sections:
        out += [f"## {title}", "", *body]
    out += ["## Inconsistencies in the published material", "",
            "Found by recomputing the published numbers from each other; reported, not fixed.", ""]
    out += [f"- {x}" for x in inconsistencies] or ["- none found"]
    return "\n".join(out).rstrip("\n") + "\n"
