"""Sparse n-gram counts of a corpus, in memory or on a Dask cluster."""
