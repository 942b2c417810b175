"""unisr: unified generative search and recommendation with semantic IDs."""

__version__ = "0.1.0"


def load(run_dir, dataset_dir=None, codes_dir=None):
    """A trained run, ready for ``.recommend(...)`` and ``.search(...)`` (see ``unisr.api.load``)."""
    from unisr.api import load as load_run

    return load_run(run_dir, dataset_dir, codes_dir)
