"""Mixtures of fitted language models that share a tokenizer: weights with a posterior, fitted on held-out text."""
