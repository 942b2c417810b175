"""The RQ-VAE: MLP encoder → residual quantizer → MLP decoder (inference side; training: ``tokenizer.module``)."""

from __future__ import annotations

import torch
from torch import nn

from unisr.tokenizer.config import TokenizerConfig


def mlp(widths: list[int]) -> nn.Sequential:
    """Linear layers of the given widths with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for position, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(width_in, width_out))
        if position < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class RQVAE(nn.Module):
    """Standardise → encode → quantize → decode; ``mean``/``std`` are fitted on the training items."""

    def __init__(self, input_dim: int, config: TokenizerConfig):
        super().__init__()
        widths = [input_dim, *config.hidden_dims, config.latent_dim]
        self.encoder = mlp(widths)
        self.decoder = mlp(widths[::-1])
        self.quantizer = config.quantizer_kind.quantizer_class()(config.levels, config.codebook_size, config.latent_dim)
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("std", torch.ones(input_dim))

    def standardise(self, embeddings: torch.Tensor) -> torch.Tensor:
        return (embeddings - self.mean) / self.std

    def encode(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Latent of raw (unstandardised) sentence embeddings."""
        return self.encoder(self.standardise(embeddings))

    @torch.no_grad()
    def codes(self, embeddings: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
        """Codes [N, L] of raw embeddings, in batches."""
        parts = [self.quantizer.encode(self.encode(chunk)) for chunk in embeddings.split(batch_size)]
        return torch.cat(parts) if parts else torch.zeros(0, self.quantizer.levels, dtype=torch.long)
