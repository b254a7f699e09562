"""cnnlab.scratch: the NumPy neural-net library of ENPM 703 assignment 2 (cs231n style).

Every layer is a pair ``x_forward(...) -> (out, cache)`` / ``x_backward(dout, cache) -> grads``;
every update rule is ``update(w, dw, config) -> (next_w, config)``. Where things live:

- ``layers``: affine, relu, leaky_relu, sigmoid, softmax and SVM losses, dropout (inverted, vanilla)
- ``normalization``: batchnorm (two backwards), layernorm, spatial batchnorm, spatial group norm
- ``conv_layers``: convolution and max pooling, naive; ``fast_layers``: the same via ``im2col``
- ``layer_utils``: sandwich layers; ``fc_net``, ``cnn``: the two models
- ``optim``: sgd, sgd_momentum, rmsprop, adam; ``solver``: the training loop
- ``gradient_check``: numerical gradients; ``gradcheck_suite``, ``bench``, ``train``: behind
  ``cnnlab scratch gradcheck | bench | train``

Importing this package imports NumPy only; torch is imported by ``bench`` (the yardstick) and by
``train`` (to describe the environment in summary.json), when they run.
"""

from cnnlab.scratch.cnn import ThreeLayerConvNet
from cnnlab.scratch.fc_net import FullyConnectedNet
from cnnlab.scratch.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error
from cnnlab.scratch.normalization import BatchNormStats
from cnnlab.scratch.optim import UPDATE_RULES, get_update_rule
from cnnlab.scratch.shapes import ShapeError
from cnnlab.scratch.solver import Solver, evaluate

__all__ = [
    "BatchNormStats", "FullyConnectedNet", "ShapeError", "Solver", "ThreeLayerConvNet", "UPDATE_RULES",
    "eval_numerical_gradient", "eval_numerical_gradient_array", "evaluate", "get_update_rule", "rel_error",
]
