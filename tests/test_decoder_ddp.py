"""The decoder trained by two CPU processes (``devices=2, strategy="ddp_spawn"``): each rank trains on its own batches."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from unisr.decoder.module import DecoderModule

LOG_ENV = "UNISR_TEST_BATCH_LOG"  # spawned ranks inherit the environment, not the test's monkeypatches


class RecordingModule(DecoderModule):
    """The decoder's module, writing (inside each rank) a fingerprint of every training batch it trains on."""

    def _record(self, name: str, line: str) -> None:
        with open(Path(os.environ[LOG_ENV]) / f"{name}-rank-{self.global_rank}.txt", "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def train_dataloader(self):
        loader = super().train_dataloader()
        self._record("epoch", str(len(loader.dataset)))  # batches of the whole epoch, before Lightning shards them
        return loader

    def training_step(self, batch, batch_index):
        encoder_input, targets, _ = batch
        content = encoder_input.history.cpu().numpy().tobytes() + targets.tokens.cpu().numpy().tobytes()
        self._record("batches", hashlib.sha1(content).hexdigest())
        return super().training_step(batch, batch_index)


@pytest.mark.slow  # 40-50 s on 2 busy cores: two spawned processes import torch and Lightning
def test_two_process_cpu_ddp_training_gives_each_rank_its_own_batches(fake_encoder, tmp_path, monkeypatch):
    from unisr import api  # here, not at the top: each spawned rank imports this module (for RecordingModule)
    from unisr.decoder import train as decoder_train
    from unisr.embeddings import EmbedConfig, embed_dataset

    dataset = api.prepare_dataset("synthetic", tmp_path / "synthetic")
    embed_dataset(dataset.root, EmbedConfig(cache_dir=str(tmp_path / "cache"), progress=False))
    codes = api.train_codes(dataset.root, api.tokenizer_config("tokenizer-small", quantizer="random", progress=False), tmp_path / "codes")
    log = tmp_path / "batches"
    log.mkdir()
    monkeypatch.setenv(LOG_ENV, str(log))
    monkeypatch.setattr(decoder_train, "DecoderModule", RecordingModule)
    config = api.decoder_config(
        "decoder-small", tasks=["rec"], epochs=1, batch_size=64, val_max_requests=40, devices=2, strategy="ddp_spawn", progress=False
    )
    result = api.train(dataset.root, codes.directory, config, tmp_path / "run")

    epoch = {int((log / f"epoch-rank-{rank}.txt").read_text()) for rank in (0, 1)}
    seen = [(log / f"batches-rank-{rank}.txt").read_text().split() for rank in (0, 1)]
    assert len(epoch) == 1 and epoch.pop() > 4  # both ranks built the same epoch of batches
    batches = len(seen[0]) + len(seen[1])
    assert len(seen[0]) == len(seen[1])  # DDP ranks step together
    assert len(set(seen[0]) & set(seen[1])) <= 1  # disjoint shares (an odd count repeats one batch to even them out)
    assert len(set(seen[0]) | set(seen[1])) >= batches - 1

    assert result.directory.is_dir() and not (tmp_path / "run.partial").exists()
    retriever = api.load(result.directory)
    history = list(dataset.catalog.ids[:3])
    found = retriever.recommend(history=history, k=5)
    assert len(found) == 5 and not {row.item_id for row in found} & set(history)
