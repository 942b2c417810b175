"""Choose the content-guidance weight of each task on validation examples, after training (no Lightning).

For each weight of a grid, the trained model decodes the validation requests with the tokenizer's content
prior at that weight (``decoder.guidance``); the weight with the best Recall@K per task is kept (ties go
to the smaller weight, so 0, the pure decoder, wins unless guidance helps). Test data is never read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from unisr.decoder.examples import Examples
from unisr.decoder.generate import Guide, generate
from unisr.decoder.guidance import CodePrior, Guidance
from unisr.decoder.inputs import AnchorLatents, InputBuilder, row_anchors
from unisr.decoder.model import SemanticIdTransformer
from unisr.decoder.trie import PrefixTrie


class GuidanceSweep(NamedTuple):
    chosen: Guidance  # the weights kept
    recall: dict[str, dict[float, float]]  # task → weight → validation Recall@K


@torch.no_grad()
def sweep_guidance(
    model: SemanticIdTransformer,
    inputs: InputBuilder,
    trie: PrefixTrie,
    valid: dict[str, Examples],
    prior: CodePrior,
    latents: AnchorLatents,
    grid: Sequence[float],
    beam_size: int,
    top_k: int,
    batch_size: int,
    current: Guidance = Guidance(),
    trained_weight: float = 0.0,
) -> GuidanceSweep:
    """Validation Recall@``top_k`` of every weight of ``grid`` for each task of ``valid``; the best weight per task."""
    model.eval()
    recall: dict[str, dict[float, float]] = {}
    for task, examples in valid.items():
        if task not in Guidance._fields or not len(examples):
            continue
        batches = [np.arange(start, min(start + batch_size, len(examples))) for start in range(0, len(examples), batch_size)]
        prepared = [(inputs.batch(examples, rows), row_anchors(examples.subset(rows), latents)) for rows in batches]
        recall[task] = {}
        for weight in grid:
            hits = []
            for (encoder_input, targets, target_items), (anchors, present) in prepared:
                guide = Guide(prior, anchors, present, float(weight), trained_weight)
                result = generate(model, encoder_input, trie, beam_size, top_k, guide=guide)
                hits.append((result.items[targets.row] == target_items[:, None]).any(dim=1).float())
            recall[task][float(weight)] = float(torch.cat(hits).mean())
    chosen = current._replace(**{task: max(scores, key=lambda weight: (scores[weight], -weight)) for task, scores in recall.items()})
    return GuidanceSweep(chosen, recall)
