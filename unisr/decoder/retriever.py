"""A trained run, ready to answer: recommendations from histories or users, and search from text queries."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from unisr.data.dataset import PreparedDataset
from unisr.decoder.artifact import check_id_table, linked_dir, load_model_of, read_config, read_run_manifest
from unisr.decoder.config import GUIDANCE_PRIORS, ITEM_SHARE, DecoderConfig
from unisr.decoder.examples import REC, SEARCH, pad_histories, user_bucket
from unisr.decoder.generate import ColdReserve, Guide, generate
from unisr.decoder.guidance import CodePrior, Guidance, ItemGuide
from unisr.decoder.inputs import InputBuilder, item_vectors
from unisr.decoder.model import SemanticIdTransformer
from unisr.decoder.trie import PrefixTrie
from unisr.embeddings import CachedEncoder, EmbedConfig, WordPieces, load_embeddings
from unisr.errors import UnisrError
from unisr.tokenizer.artifact import SemanticTokenizer
from unisr.validate import (
    check_bool,
    check_histories,
    check_k,
    check_optional_number,
    check_optional_text,
    check_queries,
    check_text,
    check_texts,
    check_users,
)


class Retrieved(NamedTuple):
    rank: int
    item_id: str
    title: str
    score: float  # log-probability of the semantic ID under the model (plus the weighted content prior when guided)
    semantic_id: tuple[int, ...]


class GenerativeRetriever:
    """Load with ``GenerativeRetriever.load(run_dir)`` (or ``unisr.load``)."""

    def __init__(
        self,
        run_dir: Path,
        manifest: dict,
        config: DecoderConfig,
        model: SemanticIdTransformer,
        dataset: PreparedDataset,
        tokenizer: SemanticTokenizer,
        guidance: Guidance | None = None,
    ):
        self.run_dir, self.manifest, self.config, self.model = run_dir, manifest, config, model.eval()
        self.dataset, self.tokenizer = dataset, tokenizer
        self.guidance = Guidance(config.guidance_rec, config.guidance_search)
        self.guidance_priors = {
            "rec": config.guidance_prior_rec,
            "search": config.guidance_prior_search,
        }  # the prior each weight applies to
        if guidance is not None:
            self.with_guidance(*guidance)
        layout = model.layout
        ids = tokenizer.table.semantic_ids
        fits = (ids < np.array(layout.level_sizes)).all(axis=1)
        self.skipped_items = [item for item, ok in zip(tokenizer.table.item_ids, fits, strict=True) if not ok]  # IDs beyond the vocabulary
        self.item_ids = [item for item, ok in zip(tokenizer.table.item_ids, fits, strict=True) if ok]
        self.item_row = {item: row for row, item in enumerate(self.item_ids)}
        semantic = torch.from_numpy(ids[fits])
        self.trie = PrefixTrie.from_ids(semantic, layout.level_sizes)
        content = None
        if config.history_content:
            embeddings = load_embeddings(dataset.root, manifest["embedding_model"])
            content = item_vectors(embeddings.items, dataset, self.item_ids)
        self._content: torch.Tensor | None = None  # the items' content embeddings for the content priors, read on first use
        self._unit_content: torch.Tensor | None = None  # the same, unit-normalized (the item prior)
        self._prior: tuple[CodePrior, torch.Tensor] | None = None  # the content prior and item latents, built on first guided request
        self.inputs = InputBuilder(layout, semantic + torch.tensor(layout.level_offsets), torch.zeros(0, manifest["query_dim"]), content)
        self._encoder: CachedEncoder | None = None
        self._words: WordPieces | None = None  # the sentence encoder's tokenizer, loaded on the first search of a model that reads it
        self.cold_share = config.cold_share
        self._cold: tuple[PrefixTrie, torch.Tensor] | None = None  # the cold items' trie and rows, built on first use

    @classmethod
    def load(
        cls,
        run_dir: str | Path,
        dataset_dir: str | Path | None = None,
        codes_dir: str | Path | None = None,
        guidance: Guidance | None = None,
    ) -> GenerativeRetriever:
        """Load a run; ``guidance`` replaces the content-guidance weights of its config (see ``decoder.guidance``)."""
        run_dir = Path(run_dir)
        manifest = read_run_manifest(run_dir)
        # answers need the catalog, and the splits only for users' histories: the query log and the rest are read if ever used
        dataset = PreparedDataset.load(dataset_dir or linked_dir(run_dir, manifest, "dataset_dir"), lazy=True)
        if dataset.fingerprint != manifest["dataset_fingerprint"]:
            raise UnisrError(
                f"{run_dir}: trained on dataset {manifest['dataset_name']!r}, not on {dataset.root} (pass the dataset it was trained on)"
            )
        codes_dir = codes_dir or linked_dir(run_dir, manifest, "codes_dir")
        tokenizer = SemanticTokenizer.load(codes_dir, dataset)
        check_id_table(run_dir, manifest, tokenizer.table, codes_dir)
        config = read_config(run_dir)
        model = load_model_of(run_dir, config, manifest["query_dim"])
        return cls(run_dir, manifest, config, model, dataset, tokenizer, guidance)

    # ----- requests → encoder inputs
    def _check_k(self, k: int) -> None:
        if k <= 0 or k > len(self.item_ids):
            raise UnisrError(f"k={k}: must lie between 1 and the number of items with semantic IDs ({len(self.item_ids):,})")

    def _check_trained_for(self, task: str) -> None:
        if task not in self.config.tasks:
            other = "search" if task == "rec" else "recommend"
            raise UnisrError(
                f"{self.run_dir}: trained for {', '.join(self.config.tasks)} only, not {task} "
                f"(use {other} with this run, or train one with --tasks {task} or --tasks rec,search)"
            )

    def _history_rows(self, history: Sequence[str]) -> list[int]:
        """Item rows of a history; unknown ids are refused (named), known items without an ID are skipped."""
        unknown = [item for item in history if item not in self.dataset.catalog]
        if unknown:
            shown = ", ".join(unknown[:5]) + (" …" if len(unknown) > 5 else "")
            raise UnisrError(f"history holds {len(unknown)} item id(s) unknown to dataset {self.dataset.name!r}: {shown} (remove them)")
        return [self.item_row[item] for item in history if item in self.item_row]

    def user_history(self, user: str) -> list[str]:
        split = self.dataset.split_by_user.get(user)
        if split is None:
            raise UnisrError(f"unknown user {user!r} (not in dataset {self.dataset.name!r})")
        return [*split.train, split.valid, split.test]

    def _query_inputs(self, queries: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Sentence vectors of the queries (whitespace normalized), and their word-piece ids for models that read them (else None)."""
        for query in queries:
            if not query or not query.strip():
                raise UnisrError("empty query: pass some words to search for")
        texts = [" ".join(query.split()) for query in queries]
        if self._encoder is None:
            self._encoder = CachedEncoder(EmbedConfig(model=self.manifest["embedding_model"], progress=False), persist=False)
        vectors, _ = self._encoder.encode(texts)
        if not self.config.query_pieces:
            return torch.from_numpy(vectors).float(), None
        if self._words is None:
            self._words = WordPieces(self._encoder.model)  # the resolved (and checksum-checked) model the vectors came from
        return torch.from_numpy(vectors).float(), torch.from_numpy(self._words.encode(texts, self.config.query_pieces))

    def with_guidance(self, rec: float | None = None, search: float | None = None, prior: str | None = None) -> GenerativeRetriever:
        """Set the content-guidance weight of recommendation and/or search (None keeps it; 0 = pure decoder) and the prior
        both tasks weight (``codes``, ``items`` or ``both``, see ``decoder.guidance``; None keeps the run's choice per task);
        returns self."""
        rec, search = check_optional_number(rec, "rec guidance weight"), check_optional_number(search, "search guidance weight")
        if prior is not None and prior not in GUIDANCE_PRIORS:
            raise UnisrError(f"guidance prior {prior!r}: choose from {', '.join(GUIDANCE_PRIORS)}")
        for name, weight in (("rec", rec), ("search", search)):
            if weight is not None and not weight >= 0:
                raise UnisrError(f"{name} guidance weight {weight}: must be a number ≥ 0 (0 = pure decoder)")
        if prior is not None:  # set only once everything is checked
            self.guidance_priors = {"rec": prior, "search": prior}
        self.guidance = Guidance(
            self.guidance.rec if rec is None else float(rec), self.guidance.search if search is None else float(search)
        )
        return self

    def with_cold_share(self, share: float | None) -> GenerativeRetriever:
        """Keep ``share`` of the ranks of each recommendation list for cold items (None keeps the run's; 0 = off); returns self.

        With share 0.1, ranks 10, 20, ... go to the best cold items (by the decoder's score over the cold items' IDs).
        """
        share = check_optional_number(share, "cold share")
        if share is not None:
            if not 0 <= share <= 1:
                raise UnisrError(f"cold share {share}: must lie in [0, 1] (0 = off; 0.1 keeps 1 of 10 slots for cold items)")
            self.cold_share = float(share)
        return self

    @property
    def cold_items(self) -> list[str]:
        """Items with IDs that no training history holds: the decoder never learned to generate them."""
        return [self.item_ids[row] for row in self._cold_tables()[1].tolist()]

    def _cold_tables(self) -> tuple[PrefixTrie, torch.Tensor]:
        if self._cold is None:
            seen = {item for split in self.dataset.split_by_user.values() for item in split.train}
            rows = torch.tensor([row for row, item in enumerate(self.item_ids) if item not in seen], dtype=torch.long)
            trie = PrefixTrie.from_ids(self.trie.ids[rows], self.trie.vocab_sizes) if len(rows) else self.trie
            self._cold = trie, rows
        return self._cold

    def _cold_reserve(self, task: int) -> ColdReserve | None:
        """Recommendation's share of ranks kept for cold items; none for search, when off, or when nothing is cold."""
        if task != REC or self.cold_share == 0:
            return None
        trie, rows = self._cold_tables()
        return ColdReserve(trie, rows, self.cold_share) if len(rows) else None

    def _item_vectors(self) -> torch.Tensor:
        """The items' content embeddings (rows of the trie), read once."""
        if self._content is None:
            self._content = self.inputs.item_vectors
            if self._content is None:  # a model that does not read them
                embeddings = load_embeddings(self.dataset.root, self.manifest["embedding_model"])
                self._content = item_vectors(embeddings.items, self.dataset, self.item_ids)
        return self._content

    def _code_prior(self) -> tuple[CodePrior, torch.Tensor]:
        """The tokenizer's content prior and the items' latents (fitted once, on first use)."""
        if self._prior is None:
            latents = self.tokenizer.latents(self._item_vectors())
            self._prior = CodePrior.fit(self.tokenizer.codebooks, latents, self.model.layout.level_sizes), latents
        return self._prior

    def _guide(self, task: int, histories: list[list[int]], query_vectors: torch.Tensor | None) -> Guide | None:
        """Anchors of the content prior: the query's latent (search) or the last history item's (recommendation)."""
        name = "search" if task == SEARCH else "rec"
        weight, trained = self.guidance.weight(name), self.config.guidance_training
        if (weight == 0 and trained == 0) or self.tokenizer.codebooks is None:  # random codes carry no content
            return None
        last = torch.tensor([history[-1] if history else -1 for history in histories], dtype=torch.long)
        is_search = task == SEARCH and query_vectors is not None
        present = torch.ones(len(histories), dtype=torch.bool) if is_search else last >= 0
        items = None
        share = ITEM_SHARE[self.guidance_priors[name]]
        if share and weight:
            if self._unit_content is None:
                self._unit_content = F.normalize(self._item_vectors(), dim=1)
            vectors = self._unit_content
            items = ItemGuide(vectors, query_vectors if is_search else vectors[last.clamp_min(0)], present)
            if not trained and share == 1:  # the code prior is not read
                return Guide(None, torch.zeros(len(histories), 0), present, weight, trained, items)
        prior, item_latents = self._code_prior()
        anchors = self.tokenizer.latents(query_vectors) if is_search else item_latents[last.clamp_min(0)]
        return Guide(prior, anchors, present, weight, trained, items, share)

    def _run(
        self,
        task: int,
        histories: list[list[int]],
        query_vectors: torch.Tensor | None,
        k: int,
        exclude_history: bool,
        users: Sequence[str | None] | None = None,
        query_pieces: torch.Tensor | None = None,
    ) -> list[list[Retrieved]]:
        self._check_k(k)
        history = torch.from_numpy(pad_histories(histories, self.config.max_history))
        size = len(histories)
        task_tensor = torch.full((size,), task, dtype=torch.long)
        query_rows = torch.arange(size) if query_vectors is not None else torch.full((size,), -1)
        buckets = torch.tensor([user_bucket(user, self.model.layout.user_buckets) for user in users or [None] * size], dtype=torch.long)
        batch = self.inputs.encoder_input(task_tensor, history, query_rows, query_vectors, buckets, query_pieces)
        exclude = torch.from_numpy(pad_histories(histories, max(1, max(map(len, histories), default=1)))) if exclude_history else None
        guide = self._guide(task, histories, query_vectors)
        with torch.no_grad():
            cold = self._cold_reserve(task)
            result = generate(self.model, batch, self.trie, max(self.config.beam_size, k), k, exclude, guide, cold=cold)
        answers = []
        for items, scores, ids in zip(result.items.tolist(), result.scores.tolist(), result.ids.tolist(), strict=True):
            answer = []
            for item, score, semantic_id in zip(items, scores, ids, strict=True):
                if item < 0:
                    continue
                item_id = self.item_ids[item]
                answer.append(Retrieved(len(answer) + 1, item_id, self.dataset.catalog[item_id].title, float(score), tuple(semantic_id)))
            answers.append(answer)
        return answers

    # ----- public API
    def recommend_batch(
        self, histories: Sequence[Sequence[str]], k: int = 10, exclude_history: bool = True, users: Sequence[str | None] | None = None
    ) -> list[list[Retrieved]]:
        """Next items for each history (item ids, oldest first); ``users`` feed the hashed user tokens where the model has them."""
        histories, k, exclude_history = check_histories(histories), check_k(k), check_bool(exclude_history, "exclude_history")
        self._check_trained_for("rec")
        users = None if users is None else check_users(users)
        if users is not None and len(users) != len(histories):
            raise UnisrError(
                f"recommend_batch: {len(histories)} histories but {len(users)} users (pass one per history, None where unknown)"
            )
        return self._run(REC, [self._history_rows(history) for history in histories], None, k, exclude_history, users)

    def recommend(
        self, history: Sequence[str] | None = None, user: str | None = None, k: int = 10, exclude_history: bool = True
    ) -> list[Retrieved]:
        """Next items after ``history``, or after everything ``user`` engaged with."""
        history, user = None if history is None else check_texts(history, "history"), check_optional_text(user, "user", "user id")
        if (history is None) == (user is None):
            raise UnisrError("recommend needs exactly one of a history or a user")
        if user is not None:
            return self.recommend_batch([self.user_history(user)], k, exclude_history, [user])[0]
        return self.recommend_batch([list(history)], k, exclude_history)[0]

    def search_batch(
        self,
        queries: Sequence[str],
        k: int = 10,
        users: Sequence[str | None] | None = None,
        histories: Sequence[Sequence[str]] | None = None,
    ) -> list[list[Retrieved]]:
        """Items for each query, personalized (where the model was trained so) by ``histories``, else by the users' whole histories."""
        queries, k = check_queries(queries), check_k(k)
        self._check_trained_for("search")
        users, histories = None if users is None else check_users(users), None if histories is None else check_histories(histories)
        users = list(users) if users is not None else [None] * len(queries)
        for name, values in (("users", users), ("histories", histories)):
            if values is not None and len(values) != len(queries):
                raise UnisrError(f"search_batch: {len(queries)} queries but {len(values)} {name} (pass one per query, None where unknown)")
        if histories is None:
            histories = [self.user_history(user) if user is not None else [] for user in users]
        rows = [self._history_rows(history) if self.config.search_history else [] for history in histories]
        vectors, pieces = self._query_inputs(queries)
        return self._run(SEARCH, rows, vectors, k, exclude_history=False, users=users, query_pieces=pieces)

    def search(self, query: str, k: int = 10, user: str | None = None) -> list[Retrieved]:
        query, user = check_text(query, "query", "query"), check_optional_text(user, "user", "user id")
        return self.search_batch([query], k, [user])[0]
