"""The default last layer's selection rule: the covariance chosen on validation positions only.

:class:`bayeslm.BayesianLastLayer` with ``method="laplace"``, ``prior_scale="auto"`` (the
default) and validation positions fits the Laplace posterior at its prior mean (the trained
head calibrated on validation text, by default) and the prior precision alpha of its
evidence, then scores the covariance at prior precision alpha * f, f in
:data:`COVARIANCE_FACTORS`, by the validation NLL of its Monte Carlo predictive (common random
numbers for all candidates). The lowest NLL wins. Test text is never read. This module holds
the candidates and the decision; docs/transformer.md says why and shows the rule on three bodies.
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
    """The chosen covariance factor at ``prior_mean``, with every candidate's validation NLL (bits per token)."""

    prior_mean: str
    covariance_factor: float
    valid_nll_bits: dict = field(default_factory=dict)  # {factor: bits}

    @property
    def reason(self) -> str:
        """One line: the winner's validation NLL against the evidence's covariance (f = 1)."""
        nll = self.valid_nll_bits
        parts = [f"valid NLL {nll[self.covariance_factor]:.4f} bits"]
        if self.covariance_factor != 1.0 and 1.0 in nll:
            parts.append(f"{nll[1.0]:.4f} with the evidence's covariance")
        return (f"prior mean {self.prior_mean}, covariance at alpha x {self.covariance_factor:g}: "
                + "; ".join(parts))


def choose(prior_mean: str, valid_nll_bits: dict) -> RuleChoice:
    """The covariance factor of lowest validation NLL (``{factor: bits}``); ties go to the larger
    factor (the plainer posterior)."""
    if not valid_nll_bits:
        raise BayesLMError("the selection rule needs at least one candidate")
    factor = min(valid_nll_bits, key=lambda f: (round(valid_nll_bits[f], 12), -f))
    return RuleChoice(prior_mean, float(factor), dict(valid_nll_bits))
