"""PyTensor Ops wrapping numpy kernels of a scalar log density and its derivative.

An object with ``logp_and_grad(x) -> (float, float)`` becomes a differentiable scalar
function in a PyMC model. The classes live at module level so PyMC can pickle them into
its parallel samplers; this module imports PyTensor, so bayeslm imports it lazily.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

__all__ = ["ScalarLogpOp", "ScalarLogpGradOp", "VectorLogpOp", "VectorLogpGradOp"]


class ScalarLogpOp(Op):
    """f(x) for a scalar x, from ``kernel.logp_and_grad(x)[0]``."""

    __props__ = ("kernel",)
    _output = 0

    def __init__(self, kernel):
        self.kernel = kernel

    def make_node(self, x):
        x = pt.as_tensor_variable(x).astype("float64")
        return Apply(self, [x], [pt.dscalar()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = np.asarray(self.kernel.logp_and_grad(float(inputs[0]))[self._output], dtype="float64")

    def grad(self, inputs, output_grads):
        return [output_grads[0] * ScalarLogpGradOp(self.kernel)(inputs[0])]


class ScalarLogpGradOp(ScalarLogpOp):
    """f'(x), from ``kernel.logp_and_grad(x)[1]`` (no second derivative)."""

    _output = 1

    def grad(self, inputs, output_grads):
        raise NotImplementedError("second derivatives are not implemented")


class VectorLogpOp(Op):
    """f(x) for a vector x, from ``kernel.logp_and_grad(x) -> (float, array)``."""

    __props__ = ("kernel",)

    def __init__(self, kernel):
        self.kernel = kernel

    def make_node(self, x):
        x = pt.as_tensor_variable(x).astype("float64")
        return Apply(self, [x], [pt.dscalar()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = np.asarray(self.kernel.logp_and_grad(np.asarray(inputs[0]))[0], dtype="float64")

    def grad(self, inputs, output_grads):
        return [output_grads[0] * VectorLogpGradOp(self.kernel)(inputs[0])]


class VectorLogpGradOp(Op):
    """The gradient of :class:`VectorLogpOp`'s function (no second derivative)."""

    __props__ = ("kernel",)

    def __init__(self, kernel):
        self.kernel = kernel

    def make_node(self, x):
        x = pt.as_tensor_variable(x).astype("float64")
        return Apply(self, [x], [pt.dvector()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = np.asarray(self.kernel.logp_and_grad(np.asarray(inputs[0]))[1], dtype="float64")

    def grad(self, inputs, output_grads):
        raise NotImplementedError("second derivatives are not implemented")
