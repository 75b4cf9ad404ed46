"""Text to token ids: tokenizers, vocabularies and corpora (one ragged int32 array + offsets)."""
