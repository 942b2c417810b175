"""Serving a trained run over HTTP (FastAPI + uvicorn, the optional extra ``unisr[serve]``): a JSON API with
request batching and a browser page; ``unisr.serve.app.create_app`` / ``run_server``. Imports no training code.

This package's __init__ imports nothing, so ``unisr.serve.defaults`` can be read where FastAPI is not installed.
"""
