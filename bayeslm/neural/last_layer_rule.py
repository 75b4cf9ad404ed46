"""The default last layer's selection rule: settings chosen on validation positions only.

:class:`bayeslm.BayesianLastLayer` with ``method="laplace"``, ``prior_scale="auto"`` (the
default) and validation positions fits one Laplace posterior per candidate prior mean (the
trained head calibrated on validation text, and zero; the head itself is the calibrated head
at temperature 1) at the prior precision alpha of its evidence, then scores every candidate
with the covariance's prior precision alpha * f, f in :data:`COVARIANCE_FACTORS`, by the
validation NLL of its Monte Carlo predictive (common random numbers for all candidates).
The lowest NLL wins. Test text is never read. This module holds the candidates and the
decision; docs/transformer.md says why and shows the rule on three bodies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bayeslm.exceptions import BayesLMError

__all__ = ["COVARIANCE_FACTORS", "RULE_DRAWS", "RULE_POSITIONS", "RuleChoice", "choose"]

#: the covariance's prior precision as a fraction of the evidence's: 1 is the plain Laplace
#: posterior; 1/100 lets directions the fitting positions do not determine spread up to 10x
#: the evidence's weight scale
COVARIANCE_FACTORS = (1.0, 0.3, 0.1, 0.03, 0.01)
#: validation positions (a random subset) and posterior draws each candidate is scored with
RULE_POSITIONS = 5000
RULE_DRAWS = 32


@dataclass(frozen=True)
class RuleChoice:
    """The chosen prior mean and covariance factor, with every candidate's validation NLL (bits per token)."""

    prior_mean: str
    covariance_factor: float
    valid_nll_bits: dict = field(default_factory=dict)  # {(prior mean, factor): bits}

    @property
    def reason(self) -> str:
        """One line: the winner's validation NLL against the best of each other prior mean and against f = 1."""
        nll = self.valid_nll_bits
        won = nll[(self.prior_mean, self.covariance_factor)]
        parts = [f"valid NLL {won:.4f} bits"]
        plain = nll.get((self.prior_mean, 1.0))
        if self.covariance_factor != 1.0 and plain is not None:
            parts.append(f"{plain:.4f} with the evidence's covariance")
        for mean in sorted({m for m, _ in nll} - {self.prior_mean}):
            best = min(v for (m, _), v in nll.items() if m == mean)
            parts.append(f"{best:.4f} at best with prior mean {mean}")
        return (f"prior mean {self.prior_mean}, covariance at alpha x {self.covariance_factor:g}: "
                + "; ".join(parts))


def choose(valid_nll_bits: dict) -> RuleChoice:
    """The candidate ``(prior mean, factor)`` of lowest validation NLL; ties go to the larger factor
    (the plainer posterior), then to the earlier prior mean."""
    if not valid_nll_bits:
        raise BayesLMError("the selection rule needs at least one candidate")
    order = {m: k for k, m in enumerate(dict.fromkeys(m for m, _ in valid_nll_bits))}
    mean, factor = min(valid_nll_bits, key=lambda c: (round(valid_nll_bits[c], 12), -c[1], order[c[0]]))
    return RuleChoice(mean, float(factor), dict(valid_nll_bits))
