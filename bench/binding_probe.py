"""Can a tiny language model bind an attribute to its object at all? A words-only probe without the kit's pipeline.

The toy base model's probes (bench/pretrain_probe.py) plateau on "What colour is the circle?" at the score of
naming *any* listed colour. This probe strips everything else away: no image, no chat template, no tokenizer,
no Trainer; a row is a list of token ids over a 92-word vocabulary ("the image shows a red circle , a blue
square and a green star . what colour is the circle ? <ans>") and the loss is the cross-entropy of the colour
at the last position. 1-3 objects of distinct kinds, colours drawn with repetition, every batch new rows;
400 fixed held-out rows scored by argmax. Naming any listed colour scores (1 + 1/2 + 1/3) / 3 = 61% (a little
more, since colours repeat); binding the colour to the named kind scores 100%.

Switches that isolate the obstacle:
  --arch qwen3vl | qwen3 | llama | gpt2   the demo's tiny Qwen3-VL language model (the default, the kit's sizes:
                                          head_dim 16, rope_theta 1e4, interleaved M-RoPE) or a plain decoder of
                                          the same width and depth (transformers' own configs)
  --combined                              each object is ONE token ("red_circle"): colour and kind already bound
                                          in the token, as they are in one merged visual token of a shape
  --direct                                the colour is asked right after the named kind (no "? <ans>")
  --letters                               a lettered choice instead: the colour is given, the answer is the letter
                                          written before the option that is that colour (chance 1/4)

    OMP_NUM_THREADS=1 .venv/bin/python bench/binding_probe.py --steps 1500
    OMP_NUM_THREADS=1 .venv/bin/python bench/binding_probe.py --steps 1500 --combined
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from common import write_results  # noqa: E402

COLOURS = ["red", "blue", "green", "yellow", "orange", "purple", "white", "black"]
KINDS = ["circle", "square", "triangle", "star", "diamond", "heart", "cross", "hexagon"]
LETTERS = ["A", "B", "C", "D"]
WORDS = [f"{c}_{k}" for c in COLOURS for k in KINDS] + \
    ["a", ",", "and", ".", "what", "colour", "is", "the", "?", "shows", "image", "<ans>"] + COLOURS + KINDS + \
    ["options", ":", "answer"] + LETTERS
VOCAB = {w: i + 2 for i, w in enumerate(WORDS)}
HELD = 400


def letter_row(rng: np.random.Generator) -> tuple[list[int], int, int]:
    """A lettered choice in words: "the colour is red . options : A . blue B . red C . green D . black . answer
    <ans>" -> B (the letter written before the option that is the given colour; chance 1/4)."""
    cols = rng.choice(len(COLOURS), 4, replace=False)
    right = int(rng.integers(4))
    seq = ["the", "colour", "is", COLOURS[cols[right]], ".", "options", ":"]
    for j in range(4):
        seq += [LETTERS[j], ".", COLOURS[cols[j]]]
    seq += [".", "answer", "<ans>"]
    return [VOCAB[w] for w in seq], VOCAB[LETTERS[right]], 4


def draw_row(rng: np.random.Generator, combined: bool, direct: bool, letters: bool = False
             ) -> tuple[list[int], int, int]:
    """Token ids of one row, the answer's id and the number of objects (4: a lettered row's options)."""
    if letters:
        return letter_row(rng)
    k = int(rng.integers(1, 4))
    kinds = rng.choice(len(KINDS), k, replace=False)
    cols = rng.integers(0, len(COLOURS), k)
    target = int(rng.integers(k))
    seq = ["the", "image", "shows"]
    for j in range(k):
        obj = [f"{COLOURS[cols[j]]}_{KINDS[kinds[j]]}"] if combined else [COLOURS[cols[j]], KINDS[kinds[j]]]
        seq += ["a", *obj, "," if j < k - 2 else ("and" if j == k - 2 else ".")]
    seq += ["what", "colour", "is", "the", KINDS[kinds[target]]] + ([] if direct else ["?", "<ans>"])
    return [VOCAB[w] for w in seq], VOCAB[COLOURS[cols[target]]], k


def draw_batch(rng: np.random.Generator, n: int, combined: bool, direct: bool, letters: bool = False):
    """Right-padded ids, attention mask, last positions, answers and object counts of n new rows."""
    rows = [draw_row(rng, combined, direct, letters) for _ in range(n)]
    width = max(len(r[0]) for r in rows)
    ids = torch.zeros(n, width, dtype=torch.long)
    mask = torch.zeros(n, width, dtype=torch.long)
    for i, (seq, _, _) in enumerate(rows):
        ids[i, :len(seq)] = torch.tensor(seq)
        mask[i, :len(seq)] = 1
    last = torch.tensor([len(r[0]) - 1 for r in rows])
    return ids, mask, last, torch.tensor([r[1] for r in rows]), np.array([r[2] for r in rows])


def build_model(arch: str, hidden: int, layers: int, heads: int) -> torch.nn.Module:
    """The demo's tiny Qwen3-VL (its language model's sizes) or a plain decoder of the same width and depth."""
    from transformers import AutoConfig, AutoModelForCausalLM, Qwen3VLConfig, Qwen3VLForConditionalGeneration

    text = dict(vocab_size=len(VOCAB) + 2, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                num_attention_heads=heads, num_key_value_heads=max(1, heads // 2), head_dim=16,
                max_position_embeddings=512, tie_word_embeddings=False)
    if arch == "qwen3vl":
        cfg = Qwen3VLConfig(text_config={**text, "rope_parameters": dict(rope_type="default", rope_theta=10000.0,
                                                                          mrope_section=[4, 2, 2], mrope_interleaved=True)},
                            vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2,
                                               out_hidden_size=hidden), tie_word_embeddings=False)
        return Qwen3VLForConditionalGeneration(cfg)
    if arch == "gpt2":
        text = dict(vocab_size=len(VOCAB) + 2, n_embd=hidden, n_layer=layers, n_head=heads, n_positions=512)
    return AutoModelForCausalLM.from_config(AutoConfig.for_model(arch, **text))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="qwen3vl", choices=["qwen3vl", "qwen3", "llama", "gpt2"])
    ap.add_argument("--combined", action="store_true", help="one token per object (colour and kind bound)")
    ap.add_argument("--direct", action="store_true", help="ask the colour right after the named kind")
    ap.add_argument("--letters", action="store_true", help="the lettered-choice task instead (see letter_row)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--every", type=int, default=250)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--results", default=str(ROOT / "bench" / "results" / "binding_probe.json"))
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    model = build_model(a.arch, a.hidden, a.layers, a.heads)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50) * max(0.0, 1 - s / a.steps))
    held = draw_batch(np.random.default_rng([a.seed, 999]), HELD, a.combined, a.direct, a.letters)

    def score() -> dict:
        model.eval()
        with torch.no_grad():
            ids, mask, last, y, k = held
            pred = model(input_ids=ids, attention_mask=mask).logits[torch.arange(len(y)), last].argmax(-1)
            ok = (pred == y).numpy()
        model.train()
        return {"all": round(100 * float(ok.mean()), 1),
                **{f"{n}_objects": round(100 * float(ok[k == n].mean()), 1) for n in (1, 2, 3) if (k == n).any()}}

    rng = np.random.default_rng(a.seed)
    t0 = time.process_time()
    curve = []
    for step in range(1, a.steps + 1):
        ids, mask, last, y, _ = draw_batch(rng, a.batch, a.combined, a.direct, a.letters)
        logits = model(input_ids=ids, attention_mask=mask).logits[torch.arange(len(y)), last]
        loss = torch.nn.functional.cross_entropy(logits, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        if step % a.every == 0 or step == a.steps:
            point = {"step": step, "rows": step * a.batch, "loss": round(loss.item(), 3), **score(),
                     "cpu_s": round(time.process_time() - t0, 1)}
            curve.append(point)
            print(point, flush=True)
    write_results(a.results, {"args": vars(a), "held_out": HELD, "curve": curve})


if __name__ == "__main__":
    main()
