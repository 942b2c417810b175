"""Defaults of the server, importable without FastAPI (the CLI reads them to build `unisr serve`)."""

DEFAULT_HOST = "127.0.0.1"  # loopback only unless told otherwise
DEFAULT_PORT = 8000
DEFAULT_MAX_BATCH = 32  # requests per batched beam search
DEFAULT_MAX_WAIT_MS = 5.0  # how long the first request of a batch waits for company
