"""The table `bench/gpu_check.sh` prints: descriptor extraction, one FSDP training step, evaluation, from its JSON files.

    python bench/gpu_table.py RESULTS_DIR    # descriptors.json, train_*.jsonl, evaluate.json written by gpu_check.sh
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def rows(folder: Path) -> list[tuple[str, str, str, str]]:
    """(measurement, setting, value, note) rows of every result file present in `folder`."""
    out = []
    d = folder / "descriptors.json"
    if d.is_file():
        r = json.loads(d.read_text())
        by = {(x["stage"], x["path"]): x for x in r["rows"]}
        for stage in sorted({s for s, _ in by}):
            b, one = by.get((stage, "batched")), by.get((stage, "one at a time"))
            if b and one:
                out.append(("descriptor extraction", f"{stage}, {r['machine'].get('model')}",
                            f"{b['candidates_per_s']} vs {one['candidates_per_s']} candidates/s",
                            f"batched (batch {r['batch_size']}) vs one at a time: x{one['seconds'] / b['seconds']:.2f}"))
    for f in sorted(folder.glob("train_*.jsonl")):
        for line in f.read_text().splitlines():
            t = json.loads(line)
            mfu = "" if t["mfu"] is None else f", MFU {100 * t['mfu']:.1f}%"
            mem = "" if t["peak_mem_gib"] is None else f", peak {t['peak_mem_gib']} GiB"
            out.append(("FSDP training step" if t["fsdp"] else "training step",
                        f"{t['model']} ({t['layers']} LLM layers), {t['attn']}",
                        f"{t['tokens_per_s']} tokens/s", f"{t['step_s']} s/step{mfu}{mem}"))
    e = folder / "evaluate.json"
    if e.is_file():
        r = json.loads(e.read_text())
        for x in r["rows"]:
            out.append(("evaluation", f"{x['benchmark']}, {r['meta']['model']}, batch {r['meta']['batch_size']}",
                        f"{x['q_per_s_batched']} questions/s",
                        f"one at a time {x['q_per_s_one']} q/s; same replies: {x['same_replies']}"))
    return out


def main() -> None:
    folder = Path(sys.argv[1])
    table = rows(folder)
    print("| measurement | setting | value | note |\n|---|---|---|---|")
    for r in table:
        print("| " + " | ".join(r) + " |")
    if not table:
        sys.exit(f"no results in {folder}")


if __name__ == "__main__":
    main()
