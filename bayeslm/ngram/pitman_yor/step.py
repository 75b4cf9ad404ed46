"""PyMC pieces of the Pitman-Yor LM: the hyperparameter likelihood Op and the seating step.

Imported lazily (it imports PyMC and PyTensor). The classes live at module level so PyMC
can pickle them into its parallel samplers: the step method and the Op inside the NUTS
step's compiled log density share one :class:`bayeslm.ngram.pitman_yor.seating_state.SeatingState` object
(``pickle`` keeps shared references within one dump), so after the seating step resamples
the tables the NUTS step sees the new sufficient statistics, in every process.
"""

from __future__ import annotations

import time

import numpy as np
import pytensor.tensor as pt
from pymc.step_methods.arraystep import BlockedStep
from pymc.step_methods.compound import Competence, StepMethodState
from pymc.util import get_random_generator
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

__all__ = ["HyperLogpOp", "SeatingStep"]


class _HyperOp(Op):
    """An Op of the per-order vectors (d, theta) reading ``state.hyper_logp``."""

    __props__ = ("state",)

    def __init__(self, state):
        self.state = state

    def _outputs(self, d, theta):
        raise NotImplementedError

    def make_node(self, d, theta):
        d = pt.as_tensor_variable(d).astype("float64")
        theta = pt.as_tensor_variable(theta).astype("float64")
        return Apply(self, [d, theta], self._outputs(d, theta))


class HyperLogpOp(_HyperOp):
    """log p(seating | d, theta) summed over orders, from ``state.hyper_logp(d, theta)``."""

    def _outputs(self, d, theta):
        return [pt.dscalar()]

    def perform(self, node, inputs, outputs):
        outputs[0][0] = np.asarray(self.state.hyper_logp(inputs[0], inputs[1])[0], dtype="float64")

    def grad(self, inputs, output_grads):
        gd, gt = HyperGradOp(self.state)(*inputs)
        return [output_grads[0] * gd, output_grads[0] * gt]


class HyperGradOp(_HyperOp):
    """The gradient of :class:`HyperLogpOp` with respect to (d, theta)."""

    def _outputs(self, d, theta):
        return [d.type(), theta.type()]

    def perform(self, node, inputs, outputs):
        _, gd, gt = self.state.hyper_logp(inputs[0], inputs[1])
        outputs[0][0] = np.asarray(gd, dtype="float64").reshape(np.shape(inputs[0]))
        outputs[1][0] = np.asarray(gt, dtype="float64").reshape(np.shape(inputs[1]))

    def grad(self, inputs, output_grads):
        raise NotImplementedError("second derivatives are not implemented")


class SeatingStep(BlockedStep):
    """Gibbs sweep over the seating arrangements (table counts) of every restaurant.

    It reads the hyperparameters from the point (``vars`` are the hyperparameters' value
    variables, which it never changes) and updates the seating held in ``state``, whose
    sufficient statistics the hyperparameter step's log density reads. At the start of a
    chain (``set_rng``) the seating is re-initialised by seating the customers one by
    one, so chains start apart. After tuning, every ``thin``-th draw (``retain`` of them)
    hands the table counts back as the sparse ``table_counts`` stat.
    """

    name = "pitman_yor_seating"
    _state_class = StepMethodState
    stats_dtypes_shapes = {
        "tables": (np.int64, []),
        "customer_moves": (np.int64, []),
        "sweep_seconds": (np.float64, []),
        "table_counts": (object, None),
    }

    def __init__(self, vars, state, hyper_fn, *, thin: int, retain: int, model=None, rng=None, blocked=True):
        self.vars = list(vars)
        self.state = state
        self.hyper_fn = hyper_fn
        self.thin = max(int(thin), 1)
        self.retain = int(retain)
        self.rng = get_random_generator(rng)
        self.tune = True
        self._draw = 0
        self._kept = 0
        self._fresh = True

    def set_rng(self, rng):
        super().set_rng(rng)
        self._fresh = True  # a new chain starts
        self._draw = 0
        self._kept = 0
        self.tune = True

    def stop_tuning(self):
        self.tune = False
        self._draw = 0

    def step(self, point):
        d, theta = (np.asarray(v, dtype=float) for v in self.hyper_fn(point))
        if self._fresh:
            self.state.initialise(d, theta, int(self.rng.integers(2**31 - 1)))
            self._fresh = False
        start = time.perf_counter()
        moves = self.state.sweep(d, theta, int(self.rng.integers(2**31 - 1)))
        stats = {
            "tables": int(self.state.total_tables()),
            "customer_moves": int(moves),
            "sweep_seconds": time.perf_counter() - start,
        }
        if not self.tune:
            self._draw += 1
            if self._draw % self.thin == 0 and self._kept < self.retain:
                stats["table_counts"] = self.state.table_counts()
                self._kept += 1
        return point, [stats]

    @staticmethod
    def competence(var, has_grad):
        return Competence.INCOMPATIBLE
