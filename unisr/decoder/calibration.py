"""Choose the content prior and guidance weight of each task on validation examples, after training (no Lightning).

For each prior (the tokenizer's code prior, the exact item prior: ``decoder.guidance``) and each weight of a grid, the
trained model decodes the validation requests guided at that weight; the (prior, weight) with the best Recall@K per task
is kept (ties go to the smaller weight, so 0, the pure decoder, wins unless guidance helps). Test data is never read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from unisr.decoder.config import ITEM_SHARE
from unisr.decoder.examples import Examples
from unisr.decoder.generate import Guide, generate
from unisr.decoder.guidance import CodePrior, Guidance, ItemGuide
from unisr.decoder.inputs import AnchorLatents, InputBuilder, row_anchors
from unisr.decoder.model import SemanticIdTransformer
from unisr.decoder.trie import PrefixTrie


class GuidanceSweep(NamedTuple):
    chosen: Guidance  # the weights kept
    priors: dict[str, str]  # task → the prior its weight applies to (codes, items or both)
    recall: dict[str, dict[str, dict[float, float]]]  # task → prior → weight → validation Recall@K


@torch.no_grad()
def sweep_guidance(
    model: SemanticIdTransformer,
    inputs: InputBuilder,
    trie: PrefixTrie,
    valid: dict[str, Examples],
    prior: CodePrior | None,
    latents: AnchorLatents | None,
    grid: Sequence[float],
    beam_size: int,
    top_k: int,
    batch_size: int,
    current: Guidance = Guidance(),
    trained_weight: float = 0.0,
    content: AnchorLatents | None = None,
    priors: Sequence[str] = ("codes",),
) -> GuidanceSweep:
    """Validation Recall@``top_k`` of every (prior, weight) of ``priors`` × ``grid`` for each task of ``valid``; the best per task.

    ``codes`` is the tokenizer's prior (``prior``, anchored at ``latents``); ``items`` the exact item prior, anchored at the
    items' and query rows' content embeddings ``content`` (in the layout of :class:`AnchorLatents`); ``both`` the mean of
    their log-priors. Ties go to the smaller
    weight, then to the prior listed first. The code prior also serves a ``trained_weight``.
    """
    if any(ITEM_SHARE[kind] for kind in priors) and content is None:
        raise ValueError("the item prior needs the content embeddings of the items and query rows (content)")
    if content is not None:
        content = content._replace(items=torch.nn.functional.normalize(content.items, dim=1))  # the item prior reads unit rows
    model.eval()
    recall: dict[str, dict[str, dict[float, float]]] = {}
    chosen_priors: dict[str, str] = {}
    for task, examples in valid.items():
        if task not in Guidance._fields or not len(examples):
            continue
        batches = [np.arange(start, min(start + batch_size, len(examples))) for start in range(0, len(examples), batch_size)]
        prepared = [(inputs.batch(examples, rows), _anchors(examples.subset(rows), latents, content)) for rows in batches]
        recall[task] = {}
        for kind in priors:
            recall[task][kind] = {}
            for weight in grid:
                decoded = [scores[0.0] for scores in recall[task].values() if 0.0 in scores]
                if weight == 0 and decoded:  # weight 0 decodes the same under every prior: once is enough
                    recall[task][kind][0.0] = decoded[0]
                    continue
                hits = []
                for (encoder_input, targets, target_items), (anchors, present, items) in prepared:
                    share = ITEM_SHARE[kind]
                    guide = Guide(prior, anchors, present, float(weight), trained_weight, items if share else None, share)
                    result = generate(model, encoder_input, trie, beam_size, top_k, guide=guide)
                    hits.append((result.items[targets.row] == target_items[:, None]).any(dim=1).float())
                recall[task][kind][float(weight)] = float(torch.cat(hits).mean())
        ranked = [
            (score, -weight, -order, kind, weight) for order, kind in enumerate(priors) for weight, score in recall[task][kind].items()
        ]
        *_, chosen_priors[task], best = max(ranked)
        current = current._replace(**{task: best})
    return GuidanceSweep(current, chosen_priors, recall)


def _anchors(
    examples: Examples, latents: AnchorLatents | None, content: AnchorLatents | None
) -> tuple[torch.Tensor, torch.Tensor, ItemGuide | None]:
    """Code-prior anchors and presence of each row (empty without ``latents``), and the item prior's guide with ``content``."""
    items = None
    if content is not None:
        vectors, present = row_anchors(examples, content)
        items = ItemGuide(content.items, vectors, present)
    if latents is None:
        return torch.zeros(len(examples), 0), items.present if items is not None else torch.zeros(len(examples), dtype=torch.bool), items
    anchors, present = row_anchors(examples, latents)
    return anchors, present, items
