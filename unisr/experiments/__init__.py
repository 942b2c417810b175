"""Experiments above evaluation: the joint-versus-single-task comparison (trains tokenizers and decoders, then measures them)."""
