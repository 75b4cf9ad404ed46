"""The section of a model adapted to a domain: how far it departs from the general model, and
whether each held-out position's prediction rests on the domain text or on the general model.

Only for a model with the :class:`~bayeslm.core.protocol.AdaptedToDomain` ability (None
otherwise); docs/domain.md says what the departure parameters and the split are.
"""

from __future__ import annotations

import numpy as np

from bayeslm.core.protocol import AdaptedToDomain

__all__ = ["departure_section"]

SOURCES = ("domain text", "general model")


def departure_section(model, encoded, epistemic_bits: np.ndarray, hdi_prob: float) -> dict | None:
    """Per order the departure (``orders``; ``parameter`` says what it is); per source of the positions'
    predictions, their count, mean domain share and epistemic entropy (``sources``; ``domain_share`` says
    what the share is); the same per context order (``by_order``).

    ``epistemic_bits``: the mutual information of every scored position of ``encoded``, shape (position,).
    """
    if not isinstance(model, AdaptedToDomain):
        return None
    table = model.uncertainty_sources(encoded)
    share = table["domain_share"].to_numpy(dtype=float)
    source = table["source"].to_numpy()
    epistemic = np.asarray(epistemic_bits, dtype=float)
    total_epistemic = float(epistemic.sum())

    def group(at: np.ndarray) -> dict:
        n = int(at.sum())
        return {"positions": n, "share_of_positions": n / at.size,
                "mean_domain_share": float(share[at].mean()) if n else None,
                "mean_epistemic_bits": float(epistemic[at].mean()) if n else None,
                "share_of_epistemic": float(epistemic[at].sum() / total_epistemic) if total_epistemic > 0 else None}

    orders = table["order"].to_numpy()
    return {
        "general_model": getattr(model, "general_", None),
        "parameter": model.departure_description,
        "domain_share": model.domain_share_description,
        "orders": model.departure(hdi_prob),
        "sources": [{"source": name, **group(source == name)} for name in SOURCES],
        "by_order": [{"order": int(k), **group(orders == k)} for k in np.unique(orders)],
    }
