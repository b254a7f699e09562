"""Colour and noise batched augmentations: colour jitter and Gaussian noise.

Same contract as ``augment_geometry``: uint8 (N, C, H, W) in and out, every image's parameters drawn
at once from the engine's generator by a ``sample_*`` function, applied by a kernel that tests replay
through torchvision. The kernels work on one float32 copy of the batch, in place, in pixel units
(0 to 255), and round back to uint8 once at the end.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from cnnlab.data.augment_geometry import uniform
from cnnlab.errors import CnnlabError

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601 luma, as torchvision's rgb_to_grayscale
HUE_OFFSETS = (3.0, 1.0, -1.0)  # n_k - 2 for r, g, b in the HSV -> RGB formula of _shift_hue


class JitterFactors(NamedTuple):
    """Per-image factors, each (N,) float32, or None where that step is off."""

    brightness: torch.Tensor | None  # multiplies the image
    contrast: torch.Tensor | None  # blends with the mean grey: 0 gives flat grey, 1 the image
    saturation: torch.Tensor | None  # blends with the grey image: 0 gives greys, 1 the image
    hue: torch.Tensor | None  # added to the hue, in turns, in [-0.5, 0.5]
    # (N, 4): each image's order of the four steps (a permutation of 0..3, torchvision's randperm(4)
    # per image); None applies them as listed
    order: torch.Tensor | None = None


def _factor_range(value: float | tuple[float, float], hue: bool = False) -> tuple[float, float]:
    """torchvision's ColorJitter ranges: a factor b means [max(0, 1 - b), 1 + b], a hue h [-h, h];
    a pair [low, high] is kept."""
    if not isinstance(value, (int, float)):
        return value[0], value[1]
    return (-value, value) if hue else (max(0.0, 1 - value), 1 + value)


def sample_color_jitter(N: int, generator: torch.Generator, brightness: float | tuple[float, float],
                        contrast: float | tuple[float, float], saturation: float | tuple[float, float],
                        hue: float | tuple[float, float]) -> JitterFactors:
    """Factors uniform in torchvision's ranges; a step whose option is 0 is off and draws nothing."""
    def draw(value, hue=False):
        return uniform((N,), *_factor_range(value, hue), generator) if value != 0 else None
    factors = [draw(brightness), draw(contrast), draw(saturation), draw(hue, hue=True)]
    order = torch.rand((N, 4), generator=generator, device=generator.device).argsort(dim=1)  # (N, 4) permutations
    return JitterFactors(*factors, order=order)


def _gray(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) luma."""
    r, g, b = image.unbind(dim=1)
    return r.mul(GRAY_WEIGHTS[0]).add_(g, alpha=GRAY_WEIGHTS[1]).add_(b, alpha=GRAY_WEIGHTS[2]).unsqueeze_(1)


def _blend_(image: torch.Tensor, other: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """In place: ratio * image + (1 - ratio) * other, clamped to [0, 255] (torchvision's _blend);
    ratio (N,), other broadcasts to image and is overwritten."""
    ratio = ratio[:, None, None, None]  # (N, 1, 1, 1)
    return image.mul_(ratio).add_(other.mul_(1 - ratio)).clamp_(0, 255)


def _shift_hue(image: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [0, 255], hue shift (N,) in turns -> (N, 3, H, W): torchvision's adjust_hue
    (RGB -> HSV, hue + shift mod 1, -> RGB), written with what a hue shift keeps, the value V = max
    and the chroma C = max - min. Overwrites ``image``. Every temporary is written in place: on CPU
    the fresh pages of new buffers cost more than the arithmetic, and torch.where is slow there."""
    r, g, b = image.unbind(dim=1)  # (N, H, W) each, views
    high = torch.maximum(r, g)
    torch.maximum(high, b, out=high)
    chroma = torch.minimum(r, g)
    torch.minimum(chroma, b, out=chroma)
    chroma.neg_().add_(high)
    # hue in sixths of a turn, as torchvision's _rgb_to_hsv: g - b where red holds the max, b - r + 2C
    # where green does (and red not), r - g + 4C where blue does; then / C. With s = r + g + b - 2C:
    # green's = red's + (3b - s), blue's = green's + (3r - s).
    not_red = torch.sub(high, r).sign_()  # 0 where red holds the max, else 1
    blue = torch.sub(high, g).sign_().mul_(not_red)  # 1 where neither red nor green does
    s = torch.add(r, g).add_(b).sub_(chroma, alpha=2)
    hue = torch.sub(g, b).addcmul_(not_red, torch.mul(b, 3).sub_(s)).addcmul_(blue, s.neg_().add_(r, alpha=3))
    hue.div_(chroma.clamp_(min=1e-6)).add_(6 * shift[:, None, None])  # a grey's 0 / C stays 0
    hue.sub_(torch.div(hue, 6, out=blue).floor_().mul_(6))  # into [0, 6] (6 only by rounding, = 0)
    # HSV -> RGB: channel k is V - C clamp(2 - d_k, 0, 1), d_k the distance around the hue circle
    # (circumference 6) between hue + n_k - 2 and 0, n = 5, 3, 1 for r, g, b
    offsets = torch.tensor(HUE_OFFSETS, device=image.device)[:, None, None]  # (3, 1, 1)
    x = torch.add(hue[:, None], offsets, out=image)  # (N, 3, H, W) in [-1, 9]; r, g, b are spent
    distance = x.abs()
    torch.minimum(distance, x.sub_(6).abs_(), out=distance)
    share = distance.neg_().add_(2).clamp_(0, 1)  # clamp(2 - d, 0, 1)
    return share.mul_(chroma[:, None]).neg_().add_(high[:, None])


def _jitter_step(out: torch.Tensor, step: int, factor: torch.Tensor) -> torch.Tensor:
    """Step 0..3 (brightness, contrast, saturation, hue) on float (N, C, H, W) in [0, 255], in place
    where it can be; factor (N,). The result, which hue returns in a new buffer."""
    C = out.shape[1]
    if step == 0:
        return out.mul_(factor[:, None, None, None]).clamp_(0, 255)
    if step == 1:
        weights = torch.tensor(GRAY_WEIGHTS if C == 3 else (1.0,), device=out.device)  # (C,)
        mean = out.mean(dim=(2, 3)) @ weights  # (N,) the grey image's mean, from the channel means
        return _blend_(out, mean[:, None, None, None], factor)
    if step == 2:
        return _blend_(out, _gray(out), factor)
    return _shift_hue(out, factor)


def apply_color_jitter(x: torch.Tensor, factors: JitterFactors) -> torch.Tensor:
    """Brightness, contrast, saturation and hue, each as torchvision's adjust_* on the float image, in
    each image's own order (``factors.order``, as torchvision's ColorJitter draws one per image), or
    in that order where ``order`` is None. One channel: contrast blends with the image's mean;
    saturation and hue leave it unchanged, as torchvision's do."""
    N, C, H, W = x.shape
    if C not in (1, 3):
        raise CnnlabError(f"augmentation 'color_jitter' needs images with 1 or 3 channels, got {C}")
    out = x.float()  # (N, C, H, W): the one float copy, changed in place below
    active = [k for k, f in enumerate(factors[:4]) if f is not None and (k < 2 or C == 3)]
    if factors.order is None or len(active) < 2:
        for k in active:
            out = _jitter_step(out, k, factors[k])
    else:  # at each position the batch is sorted by the step its images take there: a slice per step
        rows = torch.arange(N, device=x.device)  # which image each row of ``out`` holds
        for position in range(4):
            steps = factors.order[rows, position]  # (N,) the step each row takes at this position
            regroup = torch.argsort(steps, stable=True)
            out, rows, steps = out.index_select(0, regroup), rows[regroup], steps[regroup]
            ends = torch.bincount(steps, minlength=4).cumsum(0).tolist()
            for k in active:
                a, b = (ends[k - 1] if k else 0), ends[k]
                if b > a:  # in place on the slice, a view; hue gives a new buffer, copied back
                    part = _jitter_step(out[a:b], k, factors[k][rows[a:b]])
                    if part.data_ptr() != out[a:b].data_ptr():
                        out[a:b].copy_(part)
        out = out.index_select(0, torch.argsort(rows))  # back to the batch's order
    return out.add_(0.5).to(torch.uint8)  # rounds half up: every step leaves values in [0, 255], to() truncates


def color_jitter(x: torch.Tensor, generator: torch.Generator, brightness: float | tuple[float, float] = 0.4,
                 contrast: float | tuple[float, float] = 0.4, saturation: float | tuple[float, float] = 0.4,
                 hue: float | tuple[float, float] = 0.0) -> torch.Tensor:
    """Random brightness, contrast, saturation and hue per image (timm's transforms_imagenet_train:
    color_jitter 0.4 for the first three, hue off; practical work 1cd question 25 used brightness [0.1, 0.6],
    contrast 1 and hue 0.4). A number b means a factor uniform in [max(0, 1 - b), 1 + b]; hue h a
    shift uniform in [-h, h] turns; a pair [low, high] gives the range itself, as torchvision's."""
    return apply_color_jitter(x, sample_color_jitter(len(x), generator, brightness, contrast, saturation, hue))


def sample_noise(x: torch.Tensor, generator: torch.Generator, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard normal noise like x (N, C, H, W) float32, and which images get it (N,) bool."""
    chosen = torch.rand(len(x), generator=generator, device=x.device) < p
    return torch.randn(x.shape, generator=generator, device=x.device), chosen


def apply_noise(x: torch.Tensor, noise: torch.Tensor, chosen: torch.Tensor, std: float) -> torch.Tensor:
    """x + std * noise on the chosen images (N,), rounded and clamped to [0, 255]: torchvision's
    ``gaussian_noise(x / 255, sigma=std / 255, clip=True)`` scaled back to pixels. ``noise`` (N, C, H, W)
    is overwritten: it becomes the output's float buffer."""
    noise = noise.mul_(chosen[:, None, None, None] * std)  # (N, C, H, W), zero for the others
    return noise.add_(x).round_().clamp_(0, 255).to(torch.uint8)


def gaussian_noise(x: torch.Tensor, generator: torch.Generator, std: float = 25.5, p: float = 1.0) -> torch.Tensor:
    """Add Gaussian noise of ``std`` grey levels (pixel units, 0 to 255) to each image with probability
    ``p`` (torchvision's GaussianNoise: sigma 0.1 of the [0, 1] range, 25.5 grey levels, on every image)."""
    noise, chosen = sample_noise(x, generator, p)
    return apply_noise(x, noise, chosen, std)
