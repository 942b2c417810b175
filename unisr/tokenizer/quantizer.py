"""Residual quantization: codebooks per level, k-means initialisation, dead-code re-seeding."""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import numpy as np
import torch
from sklearn.cluster import KMeans
from torch import nn

KMEANS_MAX_ITER = 100  # Lloyd iterations per k-means fit


class Quantized(NamedTuple):
    quantized: torch.Tensor  # [B, D], straight-through: forward = sum of codewords, gradient flows to the input
    codes: torch.Tensor  # [B, L] int64
    codebook_loss: torch.Tensor  # pulls codewords to the (detached) residuals
    commitment_loss: torch.Tensor  # pulls residuals to the (detached) codewords


def kmeans(points: np.ndarray, clusters: int, seed: int) -> np.ndarray:
    """Centroids [clusters, D] of ``points``; with fewer distinct points, the spare centroids repeat points."""
    distinct = np.unique(points, axis=0)
    fit_clusters = min(clusters, len(distinct))
    model = KMeans(n_clusters=fit_clusters, n_init=1, max_iter=KMEANS_MAX_ITER, random_state=seed).fit(points)
    centroids = model.cluster_centers_.astype(np.float32)
    if fit_clusters < clusters:
        extra = np.random.default_rng(seed).choice(len(points), size=clusters - fit_clusters)
        centroids = np.concatenate([centroids, points[extra].astype(np.float32)])
    return centroids


def random_codes(vectors: np.ndarray, levels: int, codebook_size: int, seed: int) -> np.ndarray:
    """Uniform codes [n, levels] fixed by each vector's float32 bytes and the seed: non-semantic IDs (TIGER's random-ID ablation).

    The same vector always gets the same codes, so items given IDs later (cold start) are coded the same way.
    """
    rows = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    key = seed.to_bytes(8, "little", signed=True)
    digests = b"".join(hashlib.blake2b(row.tobytes(), digest_size=4 * levels, key=key).digest() for row in rows)
    return (np.frombuffer(digests, dtype="<u4").reshape(len(rows), levels) % codebook_size).astype(np.int64)


def squared_distances(residual: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distance of every row to every codeword: [B, D] × [K, D] → [B, K]."""
    return residual.pow(2).sum(1, keepdim=True) - 2 * residual @ codebook.T + codebook.pow(2).sum(1)


def nearest_code(residual: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codeword (squared Euclidean) for each row: [B, D] × [K, D] → [B]."""
    return squared_distances(residual, codebook).argmin(dim=1)


class ResidualQuantizer(nn.Module):
    """L codebooks of K codewords; each level quantizes what the previous levels left over."""

    def __init__(self, levels: int, codebook_size: int, dim: int):
        super().__init__()
        self.codebooks = nn.Parameter(torch.randn(levels, codebook_size, dim) * 0.01)
        self.register_buffer("initialised", torch.tensor(False))

    @property
    def levels(self) -> int:
        return self.codebooks.shape[0]

    @property
    def codebook_size(self) -> int:
        return self.codebooks.shape[1]

    def forward(self, latent: torch.Tensor) -> Quantized:
        residual = latent
        quantized = torch.zeros_like(latent)
        codes, codebook_loss, commitment_loss = [], latent.new_zeros(()), latent.new_zeros(())
        for level in range(self.levels):
            codebook = self.codebooks[level]
            index = nearest_code(residual.detach(), codebook.detach())
            codeword = codebook[index]
            codebook_loss = codebook_loss + (codeword - residual.detach()).pow(2).sum(1).mean()
            commitment_loss = commitment_loss + (residual - codeword.detach()).pow(2).sum(1).mean()
            quantized = quantized + codeword
            residual = residual - codeword.detach()
            codes.append(index)
        straight_through = latent + (quantized - latent).detach()
        return Quantized(straight_through, torch.stack(codes, dim=1), codebook_loss, commitment_loss)

    @torch.no_grad()
    def encode(self, latent: torch.Tensor) -> torch.Tensor:
        """Codes [B, L] of latents, without losses."""
        residual, codes = latent, []
        for level in range(self.levels):
            index = nearest_code(residual, self.codebooks[level])
            residual = residual - self.codebooks[level][index]
            codes.append(index)
        return torch.stack(codes, dim=1)

    @torch.no_grad()
    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Sum of the codewords named by ``codes`` [B, L] → [B, D]."""
        levels = torch.arange(self.levels, device=codes.device)
        return self.codebooks[levels, codes].sum(dim=1)

    @torch.no_grad()
    def initialise_with_kmeans(self, latent: torch.Tensor, seed: int) -> None:
        """Residual k-means: level l's codebook = k-means centroids of the residuals left by levels < l."""
        residual = latent.detach().cpu().numpy().astype(np.float64)
        for level in range(self.levels):
            centroids = kmeans(residual, self.codebook_size, seed + level)
            self.codebooks.data[level] = torch.from_numpy(centroids).to(self.codebooks)
            index = nearest_code(torch.from_numpy(residual).float(), torch.from_numpy(centroids)).numpy()
            residual = residual - centroids[index]
        self.initialised.fill_(True)

    @torch.no_grad()
    def reseed_dead_codes(self, latent: torch.Tensor, threshold: int, generator: torch.Generator) -> int:
        """Replace codewords used fewer than ``threshold`` times by residuals of random items; returns how many."""
        residual, reseeded = latent.detach(), 0
        for level in range(self.levels):
            codebook = self.codebooks.data[level]
            index = nearest_code(residual, codebook)
            usage = torch.bincount(index, minlength=self.codebook_size)
            dead = (usage < threshold).nonzero().squeeze(1)
            if len(dead):
                donors = torch.randint(len(residual), (len(dead),), generator=generator)
                codebook[dead] = residual[donors]
                reseeded += len(dead)
                index = nearest_code(residual, codebook)
            residual = residual - codebook[index]
        return reseeded
