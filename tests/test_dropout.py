"""unisr's dropout: nn.Dropout's law (drop share p, kept values scaled by 1/(1-p)) from a cheaper CPU mask."""

from __future__ import annotations

import pytest
import torch

from unisr.decoder.config import DecoderConfig
from unisr.decoder.model import Dropout
from unisr.errors import UnisrError


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_drops_a_share_p_and_scales_the_rest(p):
    torch.manual_seed(0)
    x = torch.ones(1_000_000, requires_grad=True)
    out = Dropout(p).train()(x)
    dropped = out == 0
    assert abs(dropped.float().mean().item() - p) < 0.002  # binomial std at 1M draws: ≤ 0.0005
    assert torch.allclose(out[~dropped], torch.full_like(out[~dropped], 1 / (1 - p)))
    out.sum().backward()
    assert torch.equal(x.grad, out.detach())  # the gradient is the same mask, scaled


def test_dropout_masks_are_seeded_independent_and_keep_the_dtype():
    layer = Dropout(0.3).train()
    x = torch.ones(4, 1000, dtype=torch.bfloat16)
    torch.manual_seed(5)
    first, second = layer(x), layer(x)
    torch.manual_seed(5)
    assert torch.equal(layer(x), first) and not torch.equal(first, second)
    assert first.dtype == torch.bfloat16 and first.shape == x.shape
    # no correlation between neighbouring elements (each draws its own integer)
    kept = (first != 0).float().flatten()
    assert abs(torch.corrcoef(torch.stack([kept[:-1], kept[1:]]))[0, 1].item()) < 0.05


def test_dropout_is_the_identity_in_eval_mode_and_at_zero():
    x = torch.randn(3, 7)
    assert torch.equal(Dropout(0.5).eval()(x), x) and torch.equal(Dropout(0.0).train()(x), x)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        Dropout(1.0)


def test_precision_setting_is_checked():
    assert DecoderConfig(precision="bf16-mixed").precision == "bf16-mixed"
    with pytest.raises(UnisrError, match="precision='16'.*32-true, bf16-mixed"):
        DecoderConfig(precision="16")
