"""The backbone-based descriptors, batched: VDS and PPL (3.2, 3.5), TNC in llm mode (3.3), SC sampling (3.4).

The release runs each candidate alone (two loss passes, five separate sampling calls). Here a batch
of candidates is padded and:
- loss_video / loss_blind are per-sample mean answer-token cross-entropies from one forward pass
  each (gdo_utils.vlm_batch.answer_losses); VDS = loss_blind - loss_video, PPL = exp(clip(loss, -30, 30));
- TNC asks the TNC prompt text-only for the whole batch in one greedy `generate` (<= 3 new tokens);
- SC draws 5 answers per candidate in ONE `generate` call with num_return_sequences=5, top_p 0.9,
  temperature 0.8, <= 32 new tokens.
Sampling is seeded per candidate (`CandidateSeededSampler`): each returned sequence draws its tokens
from its own generator seeded by (seed, qa_uid, sequence index), so a candidate's answers do not
depend on which other candidates share its batch, on the batch size, or on the world size.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from ..shards import stable_hash
from ..vlm_batch import VLMSample, answer_losses, encode_batch, move_to
from .stability import self_consistency
from .temporal import TNC_PROMPT_TEMPLATE, parse_tnc_reply

LOSS_CLIP = 30.0


def vds_ppl(loss_video: np.ndarray, loss_blind: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """VDS = loss_blind - loss_video (visual dependence); PPL = exp(clip(loss_video, -30, 30))."""
    lv = np.asarray(loss_video, dtype=np.float64)
    lb = np.asarray(loss_blind, dtype=np.float64)
    return lb - lv, np.exp(np.clip(lv, -LOSS_CLIP, LOSS_CLIP))


def dependence(vlm: Any, samples: Sequence[VLMSample], image_kwargs: dict | None = None) -> dict[str, np.ndarray]:
    """loss_video (with the frames), loss_blind (no visuals), vds, ppl for a batch: two forward passes."""
    loss_video = answer_losses(vlm, samples, with_visuals=True, image_kwargs=image_kwargs)
    blind = [VLMSample(s.question, s.answer, []) for s in samples]
    loss_blind = answer_losses(vlm, blind, with_visuals=False)
    vds, ppl = vds_ppl(loss_video, loss_blind)
    return {"loss_video": loss_video, "loss_blind": loss_blind, "vds": vds, "ppl": ppl}


@torch.no_grad()
def tnc_llm(vlm: Any, questions: Sequence[str], max_new_tokens: int = 3,
            rule: str = "containment") -> tuple[np.ndarray, list[str]]:
    """TNC by asking the backbone (text only, greedy): Temporal -> 1.0, Static -> 0.0, else 0.5."""
    samples = [VLMSample(TNC_PROMPT_TEMPLATE.format(question=q)) for q in questions]
    batch = move_to(encode_batch(vlm.processor, samples, with_visuals=False, with_answer=False), vlm.device)
    out = vlm.model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, top_p=None, top_k=None,
                             temperature=None, pad_token_id=vlm.tokenizer.pad_token_id)
    replies = vlm.processor.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    return np.array([parse_tnc_reply(r, rule) for r in replies], dtype=np.float64), replies


class CandidateSeededSampler(LogitsProcessor):
    """Temperature + nucleus (top-p) sampling with one seeded generator per returned sequence.

    Runs as a logits processor inside `generate(do_sample=True, temperature=1, top_p=1)`: it draws
    each row's next token itself (inverse-CDF with a uniform from the row's generator) and returns
    logits that are -inf everywhere else, so the library's own multinomial draw is forced.
    """

    def __init__(self, row_seeds: Sequence[int], temperature: float, top_p: float) -> None:
        self.gens = [torch.Generator().manual_seed(int(s) % (2**63 - 1)) for s in row_seeds]
        self.temperature, self.top_p = float(temperature), float(top_p)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[0] != len(self.gens):
            raise RuntimeError(f"sampler built for {len(self.gens)} rows, got {scores.shape[0]}")
        logits = scores.float() / self.temperature
        probs = torch.softmax(logits, dim=-1)
        sorted_p, order = torch.sort(probs, dim=-1, descending=True, stable=True)
        cum = torch.cumsum(sorted_p, dim=-1)
        keep = (cum - sorted_p) < self.top_p  # smallest prefix with mass >= top_p (first token always kept)
        sorted_p = torch.where(keep, sorted_p, torch.zeros_like(sorted_p))
        sorted_p = sorted_p / sorted_p.sum(-1, keepdim=True)
        cdf = torch.cumsum(sorted_p, dim=-1)
        u = torch.stack([torch.rand((), generator=g) for g in self.gens]).to(cdf.device, cdf.dtype)
        pos = torch.searchsorted(cdf, u.unsqueeze(1)).clamp(max=cdf.shape[1] - 1)
        # never land on a zero-probability tail token through rounding
        pos = torch.minimum(pos, keep.sum(-1, keepdim=True) - 1)
        token = order.gather(1, pos)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, token, 0.0)
        return out


def sc_row_seeds(seed: int, ids: Sequence[str], n: int) -> list[int]:
    """Seeds of the n sampled sequences of each candidate, in generate's repeat_interleave order."""
    return [stable_hash(f"sc:{seed}:{i}:{r}") for i in ids for r in range(n)]


@torch.no_grad()
def sample_answers(vlm: Any, samples: Sequence[VLMSample], ids: Sequence[str], *, n: int = 5, top_p: float = 0.9,
                   temperature: float = 0.8, max_new_tokens: int = 32, seed: int = 0,
                   image_kwargs: dict | None = None) -> list[list[str]]:
    """n sampled answers per candidate (with its visuals) from ONE generate call."""
    batch = move_to(encode_batch(vlm.processor, samples, with_visuals=True, with_answer=False,
                                 image_kwargs=image_kwargs), vlm.device, vlm.model.dtype)
    sampler = CandidateSeededSampler(sc_row_seeds(seed, ids, n), temperature, top_p)
    out = vlm.model.generate(**batch, do_sample=True, num_return_sequences=n, max_new_tokens=max_new_tokens,
                             temperature=1.0, top_p=1.0, top_k=0, logits_processor=LogitsProcessorList([sampler]),
                             pad_token_id=vlm.tokenizer.pad_token_id)
    texts = vlm.processor.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    return [texts[i * n:(i + 1) * n] for i in range(len(samples))]


def stability(vlm: Any, samples: Sequence[VLMSample], ids: Sequence[str], **kw: Any) -> tuple[np.ndarray, list]:
    """SC per candidate = mean pairwise Jaccard of its sampled answers; also returns the answers."""
    answers = sample_answers(vlm, samples, ids, **kw)
    return np.array([self_consistency(a) for a in answers], dtype=np.float64), answers
