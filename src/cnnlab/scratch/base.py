"""What the two scratch models share: parameters in a dict, batchnorm running statistics beside
them, a state dict for checkpoints, and the cs231n ``loss(X, y) -> (loss, grads)`` entry point.

A model implements ``forward_backward(X, y, rng)`` (training mode: dropout on, batchnorm on batch
statistics, running statistics updated) and ``scores(X)`` (test mode).
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.scratch.normalization import BatchNormStats

# float32 to train, float64 for gradient checks; longdouble (80-bit on x86) for the numerical
# reference of those checks (see gradient_check).
DTYPES = {"float32": np.float32, "float64": np.float64, "longdouble": np.longdouble}


def resolve_dtype(dtype) -> type:
    """np.float32, np.float64 or np.longdouble, given as the type or its name."""
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise CnnlabError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        return DTYPES[dtype]
    for kind in DTYPES.values():
        if np.dtype(dtype) == np.dtype(kind):
            return kind
    raise CnnlabError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")


def init_weights(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, weight_scale: float | str,
                 dtype: type) -> np.ndarray:
    """Gaussian weights with std ``weight_scale``, or with std sqrt(2 / fan_in) when
    weight_scale == 'he' (He et al. 2015, for layers followed by ReLU)."""
    if weight_scale == "he":
        std = np.sqrt(2.0 / fan_in)
    elif isinstance(weight_scale, (int, float)) and weight_scale > 0:
        std = float(weight_scale)
    else:
        raise CnnlabError(f"weight_scale must be a positive number or 'he', got {weight_scale!r}")
    return (std * rng.standard_normal(shape)).astype(dtype)


class ScratchModel:
    params: dict[str, np.ndarray]
    bn_stats: dict[str, BatchNormStats]
    reg: float
    rng: np.random.Generator

    def forward_backward(self, X: np.ndarray, y: np.ndarray,
                         rng: np.random.Generator | None = None) -> tuple[float, dict[str, np.ndarray], np.ndarray]:
        """One training-mode pass. Returns (loss, grads shaped as params, scores (N, num_classes))."""
        raise NotImplementedError

    def scores(self, X: np.ndarray) -> np.ndarray:
        """Test-mode class scores (N, num_classes)."""
        raise NotImplementedError

    def loss(self, X: np.ndarray, y: np.ndarray,
             rng: np.random.Generator | None = None) -> tuple[float, dict[str, np.ndarray]]:
        """cs231n's entry point: the training loss (data loss + 0.5 * reg * sum of squared weights)
        and its gradient for every parameter. ``rng`` draws the dropout masks (the model's own
        generator when None; pass a freshly seeded one to get the same masks twice)."""
        loss, grads, _ = self.forward_backward(X, y, rng)
        return loss, grads

    def l2_penalty(self, grads: dict[str, np.ndarray]) -> float:
        """Add reg * W to the gradient of every weight matrix (W1, W2, ...; not biases or norm
        parameters) and return 0.5 * reg * sum W^2, the loss term it is the gradient of."""
        if not self.reg:
            return 0.0
        total = 0.0
        for name, w in self.params.items():
            if name.startswith("W"):
                total = total + np.sum(w * w)  # a NumPy scalar: float() would round a longdouble
                grads[name] = grads[name] + self.reg * w
        return 0.5 * self.reg * total

    @property
    def num_parameters(self) -> int:
        return sum(p.size for p in self.params.values())

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and running statistic: ``W1``, ``bn1.running_mean``, ..."""
        state = {name: p.copy() for name, p in self.params.items()}
        for key, stats in self.bn_stats.items():
            state[f"{key}.running_mean"] = stats.mean.copy()
            state[f"{key}.running_var"] = stats.var.copy()
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``state_dict`` returned; names and shapes must match this model's."""
        expected = set(self.state_dict())
        if set(state) != expected:
            missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
            raise CnnlabError(f"state does not fit this model: missing {missing or 'none'}, "
                              f"unexpected {extra or 'none'}")
        for name in self.params:
            if state[name].shape != self.params[name].shape:
                raise CnnlabError(f"state['{name}'] has shape {state[name].shape}, "
                                  f"the model's is {self.params[name].shape}")
            self.params[name] = np.array(state[name], dtype=self.params[name].dtype)
        for key, stats in self.bn_stats.items():
            dtype = stats.mean.dtype
            self.bn_stats[key] = BatchNormStats(np.array(state[f"{key}.running_mean"], dtype),
                                                np.array(state[f"{key}.running_var"], dtype))
