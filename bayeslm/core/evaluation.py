"""``Evaluation``: held-out cross-entropy and perplexity of a model, per posterior draw and predictive.

Beside the per-token units, bits per character and per byte of the text the tokens spell
(:mod:`bayeslm.text.surface`): one unit in which models that cut the text differently
compare, when they price the same text (``text`` says whether it is the exact text or the
tokenizer's normalisation of it) and price every word (``oov_priced``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

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

    ``characters`` and ``bytes`` are those of the text the tokens spell, one newline per
    sentence included (what ``</s>`` predicts); bits per character is the total bits over
    them. ``text`` is ``"exact"`` when every sentence's tokens spell its line exactly, else
    the tokenizer's normalisation (e.g. lowercased, one space between tokens): the figure is
    then that of the normalised text, comparable only with models scored on the same
    normalisation. ``oov_priced`` is False for a closed-vocabulary model with OOV words,
    which pays for ``<unk>`` but not for the words' spellings.
    """

    positions: int  # scored positions: text tokens plus one </s> per sentence
    tokens: int  # text tokens (Corpus.n_tokens), </s> not counted
    sentences: int
    oov: int  # text tokens outside the vocabulary (scored as <unk>)
    cross_entropy_bits: "object"  # xarray.DataArray (chain, draw), bits per scored position
    predictive_cross_entropy_bits: float
    hdi_prob: float = HDI_PROB
    model: dict = field(default_factory=dict)
    characters: int = 0  # of the text the tokens spell, one newline per sentence included
    bytes: int = 0  # UTF-8 bytes of that text
    text: str = "exact"  # "exact", or the tokenizer's normalisation the characters are counted on
    oov_priced: bool = True  # False: OOV words are <unk> and their spellings cost nothing

    @property
    def total_bits(self):
        """Total bits of the text per draw (chain, draw)."""
        return self.cross_entropy_bits * self.positions

    @property
    def bits_per_character(self):
        """Bits per character of the priced text, per draw (chain, draw); NaN if no characters were counted."""
        return self.total_bits / (self.characters or np.nan)

    @property
    def bits_per_byte(self):
        """Bits per UTF-8 byte of the priced text, per draw (chain, draw); NaN if no bytes were counted."""
        return self.total_bits / (self.bytes or np.nan)

    @property
    def predictive_bits_per_character(self) -> float:
        """Total bits under the posterior predictive over the characters of the priced text."""
        return float(self.predictive_cross_entropy_bits * self.positions / (self.characters or np.nan))

    @property
    def predictive_bits_per_byte(self) -> float:
        return float(self.predictive_cross_entropy_bits * self.positions / (self.bytes or np.nan))

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
            "characters": self.characters,
            "bytes": self.bytes,
            "text": self.text,
            "oov_priced": self.oov_priced,
            "predictive_bits_per_character": self.predictive_bits_per_character,
            "predictive_bits_per_byte": self.predictive_bits_per_byte,
            "bits_per_character": interval_summary(self.bits_per_character, hdi_prob=self.hdi_prob),
            "bits_per_byte": interval_summary(self.bits_per_byte, hdi_prob=self.hdi_prob),
        }

    def __str__(self) -> str:
        d = self.to_dict()
        ce, pp, bpc = d["cross_entropy_bits"], d["perplexity"], d["bits_per_character"]
        pct = f"{100 * self.hdi_prob:.0f}%"
        text = "the exact text" if self.text == "exact" else f"normalised text: {self.text}"
        unpriced = "" if self.oov_priced or not self.oov else "; OOV words are <unk>, their spellings unpriced"
        return (
            f"sentences {self.sentences}, tokens {self.tokens}, scored positions {self.positions} (tokens and one </s> "
            f"per sentence), OOV {self.oov} ({100 * self.oov_rate:.2f}%)\n"
            f"predictive perplexity {d['predictive_perplexity']:.2f} "
            f"({d['predictive_cross_entropy_bits']:.4f} bits/token)\n"
            f"perplexity per draw   {pp['mean']:.2f}  {pct} HDI [{pp['hdi_low']:.2f}, {pp['hdi_high']:.2f}]\n"
            f"bits/token per draw   {ce['mean']:.4f}  {pct} HDI [{ce['hdi_low']:.4f}, {ce['hdi_high']:.4f}]\n"
            f"characters {self.characters}, bytes {self.bytes} ({text}{unpriced})\n"
            f"predictive bits/character {d['predictive_bits_per_character']:.4f}, "
            f"bits/byte {d['predictive_bits_per_byte']:.4f}\n"
            f"bits/character per draw {bpc['mean']:.4f}  {pct} HDI [{bpc['hdi_low']:.4f}, {bpc['hdi_high']:.4f}]"
        )
