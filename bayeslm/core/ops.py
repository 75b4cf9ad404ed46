"""PyTensor Ops wrapping a numpy kernel of a log density and its gradient.

An object with ``logp_and_grad(x) -> (float, array)`` for a float vector ``x`` becomes a
differentiable function in a PyMC model. The classes live at module level so PyMC can
pickle them into its parallel samplers; this module imports PyTensor, so bayeslm imports
it lazily.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

__all__ = ["VectorLogpOp", "VectorLogpGradOp"]


class _KernelOp(Op):
    """An Op evaluating one output of ``kernel.logp_and_grad`` at a float vector."""

    __props__ = ("kernel",)
    _output = 0

    def __init__(self, kernel):
        self.kernel = kernel

    def _out_type(self):
        raise NotImplementedError

    def make_node(self, x):
        x = pt.as_tensor_variable(x).astype("float64")
        return Apply(self, [x], [self._out_type()])

    def perform(self, node, inputs, outputs):
        value = self.kernel.logp_and_grad(np.asarray(inputs[0]))[self._output]
        outputs[0][0] = np.asarray(value, dtype="float64")


class VectorLogpOp(_KernelOp):
    """f(x): scalar log density of a vector x."""

    def _out_type(self):
        return pt.dscalar()

    def grad(self, inputs, output_grads):
        return [output_grads[0] * VectorLogpGradOp(self.kernel)(inputs[0])]


class VectorLogpGradOp(_KernelOp):
    """The gradient of f (no second derivative)."""

    _output = 1

    def _out_type(self):
        return pt.dvector()

    def grad(self, inputs, output_grads):
        raise NotImplementedError("second derivatives are not implemented")
