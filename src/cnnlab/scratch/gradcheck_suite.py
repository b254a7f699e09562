"""The checks behind ``cnnlab scratch gradcheck``: every layer's backward and both models'
gradients, computed in float64, against centred-difference numerical gradients.

The numerical reference runs the same function in np.longdouble (80-bit on x86) with h = 5e-7:
in float64 its own error, ~1e-11, would exceed 1e-7 relative on small entries (see
``gradient_check``). Where longdouble is only float64 (Apple silicon, Windows) h falls back to
about 6e-6 and small entries may show errors above the threshold.

Each check returns rows (layer, gradient, relative error). Inputs are small and random, drawn
from one seeded generator, so the table is the same on every run with the same seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from cnnlab.scratch import conv_layers, fast_layers, layer_utils, layers, normalization
from cnnlab.scratch.cnn import ThreeLayerConvNet
from cnnlab.scratch.fc_net import FullyConnectedNet
from cnnlab.scratch.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error

THRESHOLD = 1e-7  # what "passes" means in float64: a wrong backward is off by 1e-3 or much more
REFERENCE = np.longdouble
H = float(np.finfo(REFERENCE).eps) ** (1 / 3)  # balances truncation (h^2) against rounding (eps / h)


class CheckRow(NamedTuple):
    layer: str
    gradient: str
    rel_error: float


def check_layer(name: str, forward: Callable, backward: Callable, inputs: dict[str, np.ndarray],
                rng: np.random.Generator, checked: tuple[str, ...] | None = None) -> list[CheckRow]:
    """Compare ``backward``'s float64 gradients with numerical ones. ``forward(*inputs)`` returns
    (out, cache, ...); ``backward(dout, cache)`` returns one gradient per input, in order (or a
    dict keyed by input name). ``checked`` limits the comparison to some inputs."""
    out, cache = forward(*inputs.values())[:2]
    dout = rng.standard_normal(np.shape(out))
    grads = backward(dout, cache)
    if isinstance(grads, np.ndarray):
        grads = (grads,)
    if not isinstance(grads, dict):
        grads = dict(zip(inputs, grads))
    reference = [a.astype(REFERENCE) for a in inputs.values()]  # exact copies, in more precision
    rows = []
    for key, array in zip(inputs, reference):
        if checked is not None and key not in checked:
            continue
        numeric = eval_numerical_gradient_array(lambda _: forward(*reference)[0], array, dout.astype(REFERENCE), h=H)
        rows.append(CheckRow(name, f"d{key}", rel_error(grads[key], numeric)))
    return rows


def check_loss(name: str, loss_fn: Callable, rng: np.random.Generator) -> list[CheckRow]:
    scores, y = rng.standard_normal((6, 5)), rng.integers(0, 5, 6)
    _, dscores = loss_fn(scores, y)
    numeric = eval_numerical_gradient(lambda s: loss_fn(s, y)[0], scores.astype(REFERENCE), h=H)
    return [CheckRow(name, "dscores", rel_error(dscores, numeric))]


def check_model(name: str, build: Callable, X: np.ndarray, y: np.ndarray, rng: np.random.Generator,
                dropout_seed: int = 0) -> list[CheckRow]:
    """Every parameter's gradient of the training loss. ``build(dtype)`` makes the model; built
    twice with one seed, the float64 and reference models start from the same weights. Dropout
    draws the same masks on every call.

    Biases, gammas and betas are set to random values first: at their initial 0 (and 1), an
    example whose hidden units are all off feeds an exact 0 into the next ReLU, a kink where a
    centred difference sees half the slope and the check would fail for no fault of the backward.
    """
    model, twin = build(np.float64), build(REFERENCE)
    for key, param in model.params.items():
        if not key.startswith("W"):
            value = 0.5 * rng.standard_normal(param.shape) + (1.0 if key.startswith("gamma") else 0.0)
            model.params[key], twin.params[key] = value, value.astype(REFERENCE)
    _, grads = model.loss(X, y, rng=np.random.default_rng(dropout_seed))
    X_ref = X.astype(REFERENCE)
    loss = lambda _: twin.loss(X_ref, y, rng=np.random.default_rng(dropout_seed))[0]  # noqa: E731
    return [CheckRow(name, f"d{key}", rel_error(grads[key], eval_numerical_gradient(loss, param, h=H)))
            for key, param in twin.params.items()]


def _layer_checks(rng: np.random.Generator) -> list[CheckRow]:
    r = rng.standard_normal
    rows = []
    rows += check_layer("affine", layers.affine_forward, layers.affine_backward,
                        {"x": r((4, 2, 3)), "w": r((6, 5)), "b": r(5)}, rng)
    for act in ("relu", "leaky_relu", "sigmoid"):
        rows += check_layer(act, getattr(layers, f"{act}_forward"), getattr(layers, f"{act}_backward"),
                            {"x": r((5, 6))}, rng)
    rows += check_loss("softmax_loss", layers.softmax_loss, rng)
    rows += check_loss("svm_loss", layers.svm_loss, rng)
    seed = int(rng.integers(1 << 31))
    for kind in ("dropout", "vanilla_dropout"):
        forward = getattr(layers, f"{kind}_forward")
        rows += check_layer(kind, lambda x, f=forward: f(x, 0.6, train=True, rng=np.random.default_rng(seed)),
                            layers.dropout_backward, {"x": r((5, 6))}, rng)
    bn_inputs = lambda: {"x": 2 * r((8, 5)) + 1, "gamma": r(5), "beta": r(5)}  # noqa: E731
    bn_forward = lambda x, g, b: normalization.batchnorm_forward(x, g, b, None, train=True)  # noqa: E731
    rows += check_layer("batchnorm", bn_forward, normalization.batchnorm_backward, bn_inputs(), rng)
    rows += check_layer("batchnorm (closed form)", bn_forward, normalization.batchnorm_backward_alt, bn_inputs(), rng)
    rows += check_layer("layernorm", normalization.layernorm_forward, normalization.layernorm_backward,
                        {"x": 2 * r((4, 7)) - 1, "gamma": r(7), "beta": r(7)}, rng)
    rows += check_layer("spatial_batchnorm",
                        lambda x, g, b: normalization.spatial_batchnorm_forward(x, g, b, None, train=True),
                        normalization.spatial_batchnorm_backward,
                        {"x": r((3, 2, 4, 4)) + 1, "gamma": r(2), "beta": r(2)}, rng)
    rows += check_layer("spatial_groupnorm",
                        lambda x, g, b: normalization.spatial_groupnorm_forward(x, g, b, 2),
                        normalization.spatial_groupnorm_backward,
                        {"x": r((2, 4, 3, 3)) - 1, "gamma": r(4), "beta": r(4)}, rng)
    return rows


def _conv_checks(rng: np.random.Generator) -> list[CheckRow]:
    r = rng.standard_normal
    rows = []
    for impl, module in (("naive", conv_layers), ("fast", fast_layers)):
        rows += check_layer(f"conv ({impl}, stride 2, pad 1)",
                            lambda x, w, b, m=module: getattr(m, f"conv_forward_{impl}")(x, w, b, stride=2, pad=1),
                            getattr(module, f"conv_backward_{impl}"),
                            {"x": r((2, 3, 7, 7)), "w": r((3, 3, 3, 3)), "b": r(3)}, rng)
        rows += check_layer(f"max_pool ({impl})", lambda x, m=module: getattr(m, f"max_pool_forward_{impl}")(x),
                            getattr(module, f"max_pool_backward_{impl}"), {"x": r((2, 3, 4, 4))}, rng)
    rows += check_layer("max_pool (fast, 3x3 stride 2)",
                        lambda x: fast_layers.max_pool_forward_fast(x, pool_height=3, pool_width=3, stride=2),
                        fast_layers.max_pool_backward_fast, {"x": r((2, 2, 7, 7))}, rng)
    rows += check_layer("affine_batchnorm_relu",
                        lambda x, w, b, g, be: layer_utils.affine_norm_relu_forward(x, w, b, g, be, norm="batchnorm"),
                        layer_utils.affine_norm_relu_backward,
                        {"x": r((6, 4)), "w": r((4, 5)), "b": r(5), "gamma": r(5), "beta": r(5)}, rng,
                        checked=("x", "w", "gamma", "beta"))  # db is exactly 0: batchnorm subtracts it again
    rows += check_layer("affine_layernorm_relu",
                        lambda x, w, b, g, be: layer_utils.affine_norm_relu_forward(x, w, b, g, be, norm="layernorm"),
                        layer_utils.affine_norm_relu_backward,
                        {"x": r((6, 4)), "w": r((4, 5)), "b": r(5), "gamma": r(5), "beta": r(5)}, rng)
    rows += check_layer("conv_relu_pool", lambda x, w, b: layer_utils.conv_relu_pool_forward(x, w, b, pad=1),
                        layer_utils.conv_relu_pool_backward,
                        {"x": r((2, 3, 6, 6)), "w": r((3, 3, 3, 3)), "b": r(3)}, rng)
    return rows


def _model_checks(rng: np.random.Generator) -> list[CheckRow]:
    rows = []
    X, y = rng.standard_normal((4, 12)), rng.integers(0, 5, 4)
    for norm in (None, "batchnorm", "layernorm"):
        seed = int(rng.integers(1 << 31))
        build = lambda dtype, norm=norm, seed=seed: FullyConnectedNet(  # noqa: E731
            [9, 7], input_dim=12, num_classes=5, normalization=norm, dropout=0.2, reg=0.3, weight_scale=0.3,
            dtype=dtype, seed=seed)
        rows += check_model(f"FullyConnectedNet ({norm or 'no norm'}, dropout)", build, X, y, rng)
    X, y = rng.standard_normal((3, 2, 6, 6)), rng.integers(0, 4, 3)
    for norm in (None, "batchnorm"):
        seed = int(rng.integers(1 << 31))
        build = lambda dtype, norm=norm, seed=seed: ThreeLayerConvNet(  # noqa: E731
            (2, 6, 6), num_filters=3, filter_size=3, hidden_dim=5, num_classes=4, normalization=norm, dropout=0.2,
            reg=0.1, weight_scale=0.3, dtype=dtype, seed=seed)
        rows += check_model(f"ThreeLayerConvNet ({norm or 'no norm'}, dropout)", build, X, y, rng)
    return rows


GROUPS = {"layers": _layer_checks, "conv": _conv_checks, "models": _model_checks}


def run_gradient_checks(seed: int = 0, groups: tuple[str, ...] = tuple(GROUPS)) -> list[CheckRow]:
    """All checks of the named groups ('layers', 'conv', 'models'), in that order."""
    rng = np.random.default_rng(seed)
    rows = []
    for group in groups:
        rows += GROUPS[group](rng)
    return rows


def format_table(rows: list[CheckRow], threshold: float = THRESHOLD) -> str:
    """A plain-text table: layer, gradient, relative error, ok / FAIL."""
    width = max(len(r.layer) for r in rows) if rows else 5
    lines = [f"{'layer':<{width}}  {'gradient':<9} {'rel error':>9}  result", "-" * (width + 30)]
    for row in rows:
        verdict = "ok" if row.rel_error <= threshold else "FAIL"
        lines.append(f"{row.layer:<{width}}  {row.gradient:<9} {row.rel_error:>9.1e}  {verdict}")
    return "\n".join(lines)
