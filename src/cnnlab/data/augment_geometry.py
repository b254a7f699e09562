"""Geometric batched augmentations: crop, flips, rotation, resized crop, translation, erasing.

Every op takes a uint8 batch ``x`` (N, C, H, W) and the engine's seeded ``generator`` (on x's
device) and returns a uint8 batch of the same shape. A random op is a ``sample_*`` function that
draws every image's parameters at once from the generator, and a kernel that applies given
parameters to the whole batch, so a test can replay the parameters through torchvision's
per-image functional transforms. ``augment.py`` registers the ops and checks their options.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError

TRIES = 10  # box proposals per image before the fallback: torchvision's RandomResizedCrop and RandomErasing


class Boxes(NamedTuple):
    """One box per image, each field (N,) int64: rows top .. top+height-1, columns left .. left+width-1."""

    top: torch.Tensor
    left: torch.Tensor
    height: torch.Tensor
    width: torch.Tensor


def uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    """float32 uniform in [low, high) on the generator's device."""
    return torch.rand(shape, generator=generator, device=generator.device).mul_(high - low).add_(low)


def randint_below(n: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(N,) int64, uniform in [0, n) for each image's own bound n (N,) >= 1."""
    r = torch.rand(n.shape, generator=generator, device=n.device)
    return torch.minimum((r * n).long(), n - 1)  # the minimum guards float rounding of r * n up to n


def _windows(padded: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """The H x W window of each padded image at row offset dy, column offset dx (N,): only the output is copied."""
    windows = padded.unfold(2, H, 1).unfold(3, W, 1)  # (N, C, H'-H+1, W'-W+1, H, W), a view
    return windows[torch.arange(len(padded), device=padded.device), :, dy, dx]  # (N, C, H, W)


def _reflect_index(n: int, p: int, device: torch.device) -> torch.Tensor:
    """(n + 2p,) source index of each position of an axis padded by p, mirrored without repeating the edge."""
    i = torch.arange(-p, n + p, device=device).abs()
    return (n - 1) - ((n - 1) - i).abs()


def random_crop(x: torch.Tensor, generator: torch.Generator, padding: int = 4, fill: int = 0,
                padding_mode: str = "constant") -> torch.Tensor:
    """Pad each side by ``padding``, then crop back to H x W at a random offset per image:
    torchvision's ``RandomCrop(size, padding, fill=fill, padding_mode=padding_mode)`` (ECE 661 lab 2
    and practical work 22 use padding 4). ``constant`` pads with ``fill``; ``reflect`` mirrors the
    image without repeating its edge (torchvision's ``pad(..., padding_mode="reflect")``).
    """
    N, C, H, W = x.shape
    p = padding
    if padding_mode == "reflect":
        if p >= min(H, W):
            raise CnnlabError(f"augmentation 'random_crop' with padding_mode 'reflect' needs padding < the image "
                              f"size; got padding {p} for {H}x{W} images")
        rows, cols = _reflect_index(H, p, x.device), _reflect_index(W, p, x.device)
        padded = x[:, :, rows[:, None], cols]  # (N, C, H+2p, W+2p)
    else:
        padded = F.pad(x, (p, p, p, p), value=fill)  # (N, C, H+2p, W+2p)
    dy = torch.randint(0, 2 * p + 1, (N,), generator=generator, device=x.device)
    dx = torch.randint(0, 2 * p + 1, (N,), generator=generator, device=x.device)
    return _windows(padded, dy, dx, H, W)


def _flip_some(x: torch.Tensor, generator: torch.Generator, p: float, dim: int) -> torch.Tensor:
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < p  # (N,)
    x = x.clone()
    x[flip] = x[flip].flip(dim)  # only the chosen images are read and written twice
    return x


def flip_lr(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability ``p`` (torchvision's RandomHorizontalFlip, p 0.5)."""
    return _flip_some(x, generator, p, dim=3)


def flip_ud(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Flip each image upside down with probability ``p`` (torchvision's RandomVerticalFlip, p 0.5)."""
    return _flip_some(x, generator, p, dim=2)


def _as_range(value: float | tuple[float, float]) -> tuple[float, float]:
    """A number d means [-d, d]; a pair [low, high] is kept."""
    return (-value, value) if isinstance(value, (int, float)) else (value[0], value[1])


def sample_rotate(N: int, generator: torch.Generator, degrees: float | tuple[float, float], p: float
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Angles (N,) float32 in degrees, counter-clockwise, and which images rotate (N,) bool."""
    chosen = torch.rand(N, generator=generator, device=generator.device) < p
    return uniform((N,), *_as_range(degrees), generator), chosen


def apply_rotate(x: torch.Tensor, angle: torch.Tensor, fill: float) -> torch.Tensor:
    """Rotate each image by its angle (N,) about its centre, bilinear, corners outside filled with ``fill``:
    torchvision's ``rotate(img, angle, BILINEAR, fill=fill)``, whose inverse map is used here.

    The fill is blended as torchvision does: a channel of ones is sampled with the image, giving the
    share of each output pixel that falls inside it, and out = share * (sampled - fill) + fill. As
    ``sampled`` already counts the outside as 0, edge pixels lean toward 0 twice; kept, to match.
    """
    N, C, H, W = x.shape
    if N == 0:  # affine_grid refuses an empty batch; rotate passes one when no image is chosen
        return x.clone()
    rad = torch.deg2rad(angle.float())
    cos, sin = rad.cos(), rad.sin()
    theta = torch.zeros(N, 2, 3, device=x.device)  # output -> source, in grid_sample's [-1, 1] units
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * (H / W)
    theta[:, 1, 0], theta[:, 1, 1] = sin * (W / H), cos
    grid = F.affine_grid(theta, [N, C + 1, H, W], align_corners=False)  # (N, H, W, 2)
    ones = torch.ones(N, 1, H, W, device=x.device)
    sampled = F.grid_sample(torch.cat([x.float(), ones], dim=1), grid, mode="bilinear",
                            padding_mode="zeros", align_corners=False)  # (N, C+1, H, W)
    image, inside = sampled[:, :C], sampled[:, C:]  # (N, C, H, W), (N, 1, H, W)
    return image.sub_(fill).mul_(inside).add_(fill).round_().clamp_(0, 255).to(torch.uint8)


def rotate(x: torch.Tensor, generator: torch.Generator, degrees: float | tuple[float, float] = 66,
           fill: float = 0, p: float = 1.0) -> torch.Tensor:
    """Rotate each image with probability ``p`` (1: torchvision's RandomRotation always rotates) by an
    angle uniform in ``degrees`` (practical work 1cd question 25 used RandomRotation(66)), bilinear."""
    angle, chosen = sample_rotate(len(x), generator, degrees, p)
    if p >= 1:
        return apply_rotate(x, angle, fill)
    out = x.clone()
    out[chosen] = apply_rotate(x[chosen], angle[chosen], fill)  # the others are left exact, as angle 0 would
    return out


def _box_sizes(N: int, H: int, W: int, scale: tuple[float, float], ratio: tuple[float, float],
               generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision's box proposals, ``TRIES`` per image at once: round(sqrt(area * s * r)) and
    round(sqrt(area * s / r)), s uniform in ``scale``, log r uniform in log ``ratio``; (N, TRIES) int64 each."""
    area = H * W * uniform((N, TRIES), *scale, generator)
    aspect = uniform((N, TRIES), math.log(ratio[0]), math.log(ratio[1]), generator).exp_()
    return (area * aspect).sqrt_().round_().long(), (area / aspect).sqrt_().round_().long()


def _first(valid: torch.Tensor, *sizes: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per image, whether any try is valid (N,) and each size at the first valid try (N,)."""
    first = valid.int().argmax(dim=1, keepdim=True)  # (N, 1): argmax returns the first of equal maxima
    return (valid.any(dim=1), *(s.gather(1, first).squeeze(1) for s in sizes))


def sample_resized_crop(N: int, H: int, W: int, generator: torch.Generator, scale: tuple[float, float],
                        ratio: tuple[float, float]) -> Boxes:
    """torchvision's ``RandomResizedCrop.make_params`` for N images at once: the first of ``TRIES``
    proposals that fits, else the centre crop at the ratio bound nearest the image's."""
    w, h = _box_sizes(N, H, W, scale, ratio, generator)  # (N, TRIES) each
    found, w, h = _first((w > 0) & (w <= W) & (h > 0) & (h <= H), w, h)
    if W / H < min(ratio):
        fallback_h, fallback_w = int(round(W / min(ratio))), W
    elif W / H > max(ratio):
        fallback_h, fallback_w = H, int(round(H * max(ratio)))
    else:
        fallback_h, fallback_w = H, W
    h = torch.where(found, h, fallback_h)
    w = torch.where(found, w, fallback_w)
    top = torch.where(found, randint_below(H - h + 1, generator), (H - h) // 2)
    left = torch.where(found, randint_below(W - w + 1, generator), (W - w) // 2)
    return Boxes(top, left, h, w)


def _source_positions(start: torch.Tensor, length: torch.Tensor, out: int) -> torch.Tensor:
    """(N, out) positions in the input that bilinear resizing of each crop to ``out`` pixels reads
    (``F.interpolate(..., align_corners=False)``: clamped to the crop's first and last pixel)."""
    o = torch.arange(out, device=start.device) + 0.5  # (out,) output pixel centres
    src = (length[:, None] / out) * o - 0.5  # (N, out) in the crop's pixel units
    return start[:, None] + torch.minimum(src.clamp_(min=0), length[:, None] - 1)


def apply_resized_crop(x: torch.Tensor, boxes: Boxes) -> torch.Tensor:
    """Crop each image to its box and resize it back to H x W, bilinear without antialias:
    torchvision's ``resized_crop(img, top, left, height, width, [H, W], BILINEAR, antialias=False)``."""
    N, C, H, W = x.shape
    ys = _source_positions(boxes.top, boxes.height, H).mul_(2 / H).add_(1 / H - 1)  # (N, H) in [-1, 1] units
    xs = _source_positions(boxes.left, boxes.width, W).mul_(2 / W).add_(1 / W - 1)  # (N, W)
    grid = torch.stack(torch.broadcast_tensors(xs[:, None, :], ys[:, :, None]), dim=-1)  # (N, H, W, 2)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)  # (N, C, H, W)


def random_resized_crop(x: torch.Tensor, generator: torch.Generator, scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """A random box of each image resized back to H x W (torchvision's RandomResizedCrop defaults:
    0.08 to all of the area, aspect ratio 3/4 to 4/3)."""
    N, C, H, W = x.shape
    return apply_resized_crop(x, sample_resized_crop(N, H, W, generator, scale, ratio))


def _as_pair(value: float | tuple[float, float]) -> tuple[float, float]:
    return (value, value) if isinstance(value, (int, float)) else (value[0], value[1])


def sample_translate(N: int, H: int, W: int, generator: torch.Generator, fraction: float | tuple[float, float]
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Shifts (N,) int64 down and right: round(uniform(-f H, f H)), as torchvision's RandomAffine draws
    ``translate=(fx, fy)`` (fx of the width for columns, fy of the height for rows)."""
    fx, fy = _as_pair(fraction)
    dx = uniform((N,), -fx * W, fx * W, generator).round_().long()
    dy = uniform((N,), -fy * H, fy * H, generator).round_().long()
    return dy, dx


def apply_translate(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, reach: tuple[int, int], fill: float
                    ) -> torch.Tensor:
    """Shift each image by whole pixels dy, dx (N,), uncovered pixels set to ``fill``: torchvision's
    ``affine(img, angle=0, translate=[dx, dy], scale=1, shear=[0, 0], fill=fill)``.
    ``reach`` (rows, columns) bounds |dy| and |dx|: the padding the windows need."""
    N, C, H, W = x.shape
    ry, rx = reach
    padded = F.pad(x, (rx, rx, ry, ry), value=fill)  # (N, C, H+2ry, W+2rx)
    return _windows(padded, ry - dy, rx - dx, H, W)


def translate(x: torch.Tensor, generator: torch.Generator, fraction: float | tuple[float, float] = 0.125,
              fill: float = 0) -> torch.Tensor:
    """Shift each image by up to ``fraction`` of its width and height (0.125: 4 of 32 pixels, the shift
    range of ``random_crop`` with padding 4). A pair is (of the width, of the height), as torchvision's."""
    N, C, H, W = x.shape
    fx, fy = _as_pair(fraction)
    dy, dx = sample_translate(N, H, W, generator, fraction)
    return apply_translate(x, dy, dx, (math.ceil(fy * H), math.ceil(fx * W)), fill)


def sample_erasing(N: int, H: int, W: int, generator: torch.Generator, p: float, scale: tuple[float, float],
                   ratio: tuple[float, float]) -> Boxes:
    """torchvision's ``RandomErasing.make_params`` for N images at once; an image that is not chosen
    (probability 1 - p) or finds no box smaller than itself in ``TRIES`` gets an empty box."""
    chosen = torch.rand(N, generator=generator, device=generator.device) < p
    h, w = _box_sizes(N, H, W, scale, ratio, generator)  # (N, TRIES) each: here the ratio is height / width
    found, h, w = _first((h < H) & (w < W), h, w)
    h, w = h * (found & chosen), w * (found & chosen)  # (N,): 0 where nothing is erased
    return Boxes(randint_below(H - h + 1, generator), randint_below(W - w + 1, generator), h, w)


def apply_erasing(x: torch.Tensor, boxes: Boxes, value: float) -> torch.Tensor:
    """Set each image's box to ``value``: torchvision's ``erase(img, top, left, height, width, value)``."""
    N, C, H, W = x.shape
    rows = torch.arange(H, device=x.device) - boxes.top[:, None]  # (N, H), the row within the box
    cols = torch.arange(W, device=x.device) - boxes.left[:, None]  # (N, W)
    in_rows = (rows >= 0) & (rows < boxes.height[:, None])
    in_cols = (cols >= 0) & (cols < boxes.width[:, None])
    return x.masked_fill(in_rows[:, None, :, None] & in_cols[:, None, None, :], value)  # mask (N, 1, H, W)


def random_erasing(x: torch.Tensor, generator: torch.Generator, p: float = 0.5,
                   scale: tuple[float, float] = (0.02, 0.33), ratio: tuple[float, float] = (0.3, 3.3),
                   value: float = 0) -> torch.Tensor:
    """Cutout: erase a random box of each image with probability ``p`` (torchvision's RandomErasing
    defaults, after Zhong et al. 2017: p 0.5, 2% to 33% of the area, ratio 0.3 to 3.3, value 0)."""
    N, C, H, W = x.shape
    return apply_erasing(x, sample_erasing(N, H, W, generator, p, scale, ratio), value)
