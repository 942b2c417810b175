"""Default names and places shared by the faces (API, CLI, server), importable without loading any pipeline stage."""

from pathlib import Path

DEFAULT_PREPARED_DIR = Path("prepared")
DEFAULT_QUICKSTART_DIR = Path("unisr-quickstart")
DEFAULT_TOKENIZER_CONFIG = "tokenizer"  # configs/tokenizer.yaml (TIGER sizes)
DEFAULT_DECODER_CONFIG = "decoder"  # configs/decoder.yaml (TIGER sizes)
DEFAULT_COMPARE_CONFIG = "compare"  # configs/compare.yaml (TIGER sizes, 3 seeds)
QUICKSTART_COMPARE_CONFIG = "compare-small"  # configs/compare-small.yaml
DEFAULT_COMPARISONS_DIR = Path("comparisons")
