"""unisr: unified generative search and recommendation with semantic IDs."""

__version__ = "0.1.0"


def load(run_dir, dataset_dir=None, codes_dir=None, guidance=None):
    """A trained run, ready for ``.recommend(...)`` and ``.search(...)`` (see ``unisr.api.load``); loads no training code."""
    from unisr.decoder.retriever import GenerativeRetriever

    return GenerativeRetriever.load(run_dir, dataset_dir, codes_dir, guidance)
