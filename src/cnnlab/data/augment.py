"""Batched data augmentation: each op transforms a whole batch tensor at once.

An op takes the uint8 batch (N, C, H, W) as the DeviceLoader stores it, on the training
device, and a ``torch.Generator`` that the engine owns and seeds, so augmentation is
reproducible and resumable; it returns a uint8 batch of the same shape (as torchvision's
tensor transforms do with uint8 images). Working on bytes before the float conversion moves a
quarter of the memory. No per-sample Python, as in airbench's ``batch_crop`` / ``batch_flip_lr``:
every image's parameters are drawn at once as tensors.
Recipes list ops by name: ``augment: [{name: random_crop, padding: 4}, {name: flip_lr}]``.

The ops (options and defaults in each function's signature; each matches the torchvision v2
transform named, given the same parameters):

- geometry (``augment_geometry``): ``random_crop`` (padding, fill, padding_mode constant or
  reflect: RandomCrop), ``flip_lr`` / ``flip_ud`` (p: RandomHorizontalFlip / RandomVerticalFlip),
  ``rotate`` (degrees, fill, p: RandomRotation, bilinear), ``random_resized_crop`` (scale, ratio:
  RandomResizedCrop to the input's size, bilinear, no antialias), ``translate`` (fraction, fill:
  RandomAffine(degrees=0, translate)), ``random_erasing`` (p, scale, ratio, value: RandomErasing).
- colour and noise (``augment_color``): ``color_jitter`` (brightness, contrast, saturation, hue:
  ColorJitter in a fixed order), ``gaussian_noise`` (std in grey levels, p: GaussianNoise).

``build_augmentations`` checks every option against ``OPTION_RULES`` when the recipe is read,
so a bad value fails before training with one line naming the op, the option and the valid range.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch

from cnnlab.data.augment_color import color_jitter, gaussian_noise
from cnnlab.data.augment_geometry import (flip_lr, flip_ud, random_crop, random_erasing, random_resized_crop,
                                          rotate, translate)
from cnnlab.errors import CnnlabError
from cnnlab.registry import Registry, check_options

Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
AUGMENTATIONS: Registry[Callable[..., torch.Tensor]] = Registry("augmentation")
for _op in (random_crop, flip_lr, flip_ud, rotate, random_resized_crop, translate, random_erasing,
            color_jitter, gaussian_noise):
    AUGMENTATIONS.register()(_op)

# ---------------------------------------------------------------- option rules
# A rule returns what the value must be, in words, when it breaks the rule, and None when it holds.
Rule = Callable[[Any], "str | None"]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _interval(low: float, high: float | None = None, *, open_high: bool = False, integer: bool = False) -> Rule:
    """A number >= low, and <= high (< high when open_high) unless high is None."""
    words = f">= {low}" if high is None else f"in [{low}, {high}{')' if open_high else ']'}"
    words = f"must be {'an integer ' if integer else ''}{words}"

    def rule(value: Any) -> str | None:
        ok = _is_number(value) and (isinstance(value, int) or not integer) and value >= low
        ok = ok and (high is None or (value < high if open_high else value <= high))
        return None if ok else words

    return rule


def _pair(holds: Callable[[float, float], bool], words: str) -> Rule:
    """Two numbers [a, b] for which ``holds(a, b)``."""
    def rule(value: Any) -> str | None:
        ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(map(_is_number, value))
        return None if ok and holds(*value) else f"must be a pair {words}"

    return rule


def _ordered(low: float | None = None, high: float | None = None, *, open_low: bool = False) -> Rule:
    """A pair [a, b] with low <= a <= b <= high (low < a with open_low; None: no bound)."""
    left = "" if low is None else f"{low} {'<' if open_low else '<='} "
    right = "" if high is None else f" <= {high}"
    return _pair(lambda a, b: ((low is None or (a > low if open_low else a >= low)) and a <= b
                               and (high is None or b <= high)), f"[low, high] with {left}low <= high{right}")


def _number_or_pair(number: Rule, pair: Rule) -> Rule:
    return lambda value: pair(value) if isinstance(value, (list, tuple)) else number(value)


def _one_of(*names: str) -> Rule:
    return lambda value: None if value in names else f"must be one of {', '.join(names)}"


PROBABILITY = _interval(0, 1)
PIXEL = _interval(0, 255)  # a grey level of the uint8 image
SCALE = _ordered(0, 1, open_low=True)  # a share of the image's area
RATIO = _ordered(0, open_low=True)  # an aspect ratio
FACTOR = _number_or_pair(_interval(0), _ordered(0))  # b means [max(0, 1 - b), 1 + b]
HUE = _number_or_pair(_interval(0, 0.5), _ordered(-0.5, 0.5))  # turns of the hue circle
DEGREES = _number_or_pair(_interval(0, 180), _ordered(-180, 180))
FRACTION = _number_or_pair(_interval(0, 1, open_high=True),
                           _pair(lambda fx, fy: 0 <= fx < 1 and 0 <= fy < 1, "[of the width, of the height] in [0, 1)"))

OPTION_RULES: dict[str, dict[str, Rule]] = {
    "random_crop": {"padding": _interval(0, integer=True), "fill": PIXEL,
                    "padding_mode": _one_of("constant", "reflect")},
    "flip_lr": {"p": PROBABILITY},
    "flip_ud": {"p": PROBABILITY},
    "rotate": {"degrees": DEGREES, "fill": PIXEL, "p": PROBABILITY},
    "random_resized_crop": {"scale": SCALE, "ratio": RATIO},
    "translate": {"fraction": FRACTION, "fill": PIXEL},
    "random_erasing": {"p": PROBABILITY, "scale": SCALE, "ratio": RATIO, "value": PIXEL},
    "color_jitter": {"brightness": FACTOR, "contrast": FACTOR, "saturation": FACTOR, "hue": HUE},
    "gaussian_noise": {"std": _interval(0), "p": PROBABILITY},
}


def check_augmentation(name: str, options: dict[str, Any]) -> None:
    """Raise a one-line CnnlabError for an unknown op, an unknown option or a value out of range."""
    fn = AUGMENTATIONS.get(name)
    check_options(f"augmentation '{name}'", fn, options, exclude=["x", "generator"])
    for key, value in options.items():
        problem = OPTION_RULES[name][key](value)
        if problem:
            raise CnnlabError(f"augmentation '{name}' option '{key}' {problem}, got {value!r}")


def build_augmentations(specs: Sequence[dict[str, Any]]) -> list[Augmentation]:
    """Turn recipe entries ``{name: ..., **options}`` into ops ``(batch, generator) -> batch``."""
    ops = []
    for spec in specs:
        if not isinstance(spec, dict) or "name" not in spec:
            raise CnnlabError(f"each data.augment entry needs a name, e.g. {{name: flip_lr}}; got {spec!r}")
        options = {k: v for k, v in spec.items() if k != "name"}
        check_augmentation(spec["name"], options)
        ops.append(partial(AUGMENTATIONS.get(spec["name"]), **options))
    return ops
