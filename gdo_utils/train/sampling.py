"""LLaVA-1.5's `group_by_modality_length` batch order, for the Trainer's sampler.

Rows with media (length > 0) and text-only rows (length < 0, as LLaVA's `modality_lengths` marks them) are
shuffled and grouped by length apart; each megabatch (per-device batch x processes x accumulation, one
optimizer step) holds one modality only and is split into per-process chunks of balanced token counts.
The megabatches are shuffled; the two leftover partial megabatches are joined into one last step. This is
the algorithm of haotian-liu/LLaVA llava/train/llava_trainer.py (get_modality_length_grouped_indices),
with a seeded generator for the within-modality shuffles too (LLaVA uses the global RNG there).
"""
from __future__ import annotations

from typing import Iterator, Sequence

import torch


def split_to_even_chunks(indices: list[int], lengths: Sequence[int], num_chunks: int) -> list[list[int]]:
    """Deal `indices` (longest first) to `num_chunks` equal-sized chunks, each to the one with fewest tokens."""
    if len(indices) % num_chunks:
        return [indices[i::num_chunks] for i in range(num_chunks)]
    per_chunk = len(indices) // num_chunks
    chunks: list[list[int]] = [[] for _ in range(num_chunks)]
    totals = [0.0] * num_chunks
    for i in indices:
        k = totals.index(min(totals))
        chunks[k].append(i)
        totals[k] += lengths[i]
        if len(chunks[k]) == per_chunk:
            totals[k] = float("inf")
    return chunks


def length_grouped_indices(lengths: Sequence[int], batch_size: int, world_size: int,
                           generator: torch.Generator) -> list[int]:
    """Shuffle, cut into megabatches, sort each by length (longest first) and split it evenly across processes."""
    perm = torch.randperm(len(lengths), generator=generator).tolist()
    mega = world_size * batch_size
    out: list[int] = []
    for s in range(0, len(perm), mega):
        block = sorted(perm[s:s + mega], key=lambda i: lengths[i], reverse=True)
        out += [i for chunk in split_to_even_chunks(block, lengths, world_size) for i in chunk]
    return out


def modality_length_grouped_indices(lengths: Sequence[int], batch_size: int, world_size: int,
                                    generator: torch.Generator) -> list[int]:
    """Indices in LLaVA's modality-grouped order (lengths > 0: rows with media, < 0: text-only rows)."""
    if any(n == 0 for n in lengths):
        raise ValueError("modality lengths must be non-zero (positive: media rows, negative: text-only rows)")
    if all(n > 0 for n in lengths) or all(n < 0 for n in lengths):
        return length_grouped_indices([abs(n) for n in lengths], batch_size, world_size, generator)
    mm = [(i, n) for i, n in enumerate(lengths) if n > 0]
    lang = [(i, -n) for i, n in enumerate(lengths) if n < 0]
    mega = world_size * batch_size
    groups = []
    for part in (mm, lang):
        order = length_grouped_indices([n for _, n in part], batch_size, world_size, generator)
        ids = [part[j][0] for j in order]
        groups.append([ids[s:s + mega] for s in range(0, len(ids), mega)])
    (mm_blocks, lang_blocks) = groups
    leftover = mm_blocks[-1] + lang_blocks[-1]
    blocks = mm_blocks[:-1] + lang_blocks[:-1]
    blocks = [blocks[i] for i in torch.randperm(len(blocks), generator=generator).tolist()]
    if leftover:
        blocks.append(sorted(leftover))
    return [i for b in blocks for i in b]


class ModalityLengthSampler(torch.utils.data.Sampler):
    """A sampler yielding `modality_length_grouped_indices` (one new order per epoch from the seeded generator)."""

    def __init__(self, lengths: Sequence[int], batch_size: int, world_size: int, seed: int) -> None:
        self.lengths, self.batch_size, self.world_size = list(lengths), batch_size, world_size
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        return iter(modality_length_grouped_indices(self.lengths, self.batch_size, self.world_size, self.generator))
