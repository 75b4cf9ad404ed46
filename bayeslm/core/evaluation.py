"""``Evaluation``: held-out cross-entropy and perplexity of a model, per posterior draw and predictive."""

from __future__ import annotations

from dataclasses import dataclass, field

from bayeslm.stats.intervals import HDI_PROB, interval_summary

__all__ = ["Evaluation"]


@dataclass
class Evaluation:
    """Held-out scores of a model, in bits per token and perplexity.

    Counts follow one rule across bayeslm: ``tokens`` are the text's tokens
    (:attr:`bayeslm.text.corpus.Corpus.n_tokens`, no sentence markers), ``positions`` the
    scored positions (every token and one ``</s>`` per sentence), over which the
    cross-entropy is averaged. ``cross_entropy_bits`` and ``perplexity`` are per posterior
    draw (dims chain, draw); the headline is the posterior-predictive (mixture over draws)
    perplexity.
    """

    positions: int  # scored positions: text tokens plus one </s> per sentence
    tokens: int  # text tokens (Corpus.n_tokens), </s> not counted
    sentences: int
    oov: int  # text tokens outside the vocabulary (scored as <unk>)
    cross_entropy_bits: "object"  # xarray.DataArray (chain, draw), bits per scored position
    predictive_cross_entropy_bits: float
    hdi_prob: float = HDI_PROB
    model: dict = field(default_factory=dict)

    @property
    def oov_rate(self) -> float:
        """Share of text tokens outside the vocabulary."""
        return self.oov / self.tokens if self.tokens else 0.0

    @property
    def perplexity(self):
        """Perplexity per draw: 2 ** bits per token."""
        return 2.0**self.cross_entropy_bits

    @property
    def predictive_perplexity(self) -> float:
        return float(2.0**self.predictive_cross_entropy_bits)

    def to_dict(self) -> dict:
        return {
            "schema": "bayeslm.evaluate/2",
            "model": self.model,
            "positions": self.positions,
            "tokens": self.tokens,
            "sentences": self.sentences,
            "oov": self.oov,
            "oov_rate": self.oov_rate,
            "predictive_perplexity": self.predictive_perplexity,
            "predictive_cross_entropy_bits": float(self.predictive_cross_entropy_bits),
            "cross_entropy_bits": interval_summary(self.cross_entropy_bits, hdi_prob=self.hdi_prob),
            "perplexity": interval_summary(self.perplexity, hdi_prob=self.hdi_prob),
        }

    def __str__(self) -> str:
        d = self.to_dict()
        ce, pp = d["cross_entropy_bits"], d["perplexity"]
        pct = f"{100 * self.hdi_prob:.0f}%"
        return (
            f"sentences {self.sentences}, tokens {self.tokens}, scored positions {self.positions} (tokens and one </s> "
            f"per sentence), OOV {self.oov} ({100 * self.oov_rate:.2f}%)\n"
            f"predictive perplexity {d['predictive_perplexity']:.2f} "
            f"({d['predictive_cross_entropy_bits']:.4f} bits/token)\n"
            f"perplexity per draw   {pp['mean']:.2f}  {pct} HDI [{pp['hdi_low']:.2f}, {pp['hdi_high']:.2f}]\n"
            f"bits/token per draw   {ce['mean']:.4f}  {pct} HDI [{ce['hdi_low']:.4f}, {ce['hdi_high']:.4f}]"
        )
