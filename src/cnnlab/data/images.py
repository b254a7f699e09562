"""Image files and pixel arrays as the datasets and ``Predictor`` take them: decoding with Pillow,
channel conversion and resizing, one rule for training, prediction and export.

Decoding applies EXIF rotation and converts palette, RGBA (over black), CMYK and 16-bit images;
grayscale from RGB is Pillow's ITU-R 601-2 luma. ``resize`` scales the shorter side and crops the
centre (torchvision's ``Resize`` + ``CenterCrop``); ``stretch`` scales both sides to the size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnlab.errors import CnnlabError

ImageInput = str | Path | np.ndarray  # a file, or uint8 (H, W) / (H, W, C) / (C, H, W) pixels
RESIZE_MODES = ("resize", "stretch")
# Pillow modes of one band: a file in one of these is grayscale (palette images count as colour)
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def read_image(path: str | Path, channels: int) -> np.ndarray:
    """uint8 (H, W, C) pixels of an image file in ``channels`` (1: grayscale, 3: RGB)."""
    from PIL import UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise CnnlabError(f"{path}: no such image file")
    try:
        pixels, _ = decode_image(path, channels)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise CnnlabError(f"{path} is not an image that Pillow can read ({err})") from err
    return pixels


def decode_image(path: str | Path, channels: int | None) -> tuple[np.ndarray, bool]:
    """uint8 (H, W, C) pixels of an image file and whether the file is grayscale (a one-band mode).

    ``channels`` 1 or 3 converts to Pillow's L or RGB; None keeps the file's kind: (H, W, 1) for a
    grayscale file, else (H, W, 3). Pillow's errors pass through (the caller names the file).
    """
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        ImageOps.exif_transpose(image, in_place=True)  # camera photos stored sideways (in place: no copy)
        gray = image.mode in GRAY_MODES
        if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):  # 16-bit: scale, do not clip, to 8 bits
            pixels = np.asarray(image, dtype=np.float64)
            image = Image.fromarray((pixels * 255.0 / max(pixels.max(), 1.0)).round().astype(np.uint8))
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            image = image.convert("RGBA")
            background = Image.new("RGBA", image.size, (0, 0, 0, 255))  # transparent = black, as the
            image = Image.alpha_composite(background, image)  # datasets' backgrounds
        mode = "L" if channels == 1 or (channels is None and gray) else "RGB"
        array = np.asarray(image if image.mode == mode else image.convert(mode))
    return (array[:, :, None] if array.ndim == 2 else array), gray  # (H, W, C)


def as_pixels(image: ImageInput, channels: int) -> np.ndarray:
    """uint8 (H, W, C) pixels from a file or an array."""
    if isinstance(image, (str, Path)):
        return read_image(image, channels)
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise CnnlabError(f"image arrays must be uint8 pixels, got {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    elif array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[2] not in (1, 3):
        array = array.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise CnnlabError(f"an image array must be (H, W), (H, W, C) or (C, H, W) with 1 or 3 channels; "
                          f"got shape {array.shape}")
    if array.shape[2] != channels:  # gray <-> RGB as Pillow converts files (ITU-R 601-2 luma)
        array = convert_channels(array.transpose(2, 0, 1)[None], channels)[0].transpose(1, 2, 0)
    return array


def resize_center(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W, C) -> (h, w, C): the shorter side to the target's, bilinear with antialiasing, then
    the centre crop (torchvision's Resize(min) + CenterCrop); unchanged when already that size."""
    from PIL import Image

    H, W, C = pixels.shape
    h, w = size
    if (H, W) == (h, w):
        return pixels
    if h == w:  # torchvision's Resize(h): the shorter side to h, the longer to int(h * long / short)
        long = int(h * max(H, W) / min(H, W))
        new = (h, long) if W <= H else (long, h)  # PIL sizes are (width, height)
    else:
        scale = max(h / H, w / W)
        new = (max(w, int(W * scale)), max(h, int(H * scale)))
    image = Image.fromarray(pixels[:, :, 0] if C == 1 else pixels).resize(new, Image.Resampling.BILINEAR)
    left, top = int(round((new[0] - w) / 2.0)), int(round((new[1] - h) / 2.0))  # torchvision's center_crop
    out = np.asarray(image.crop((left, top, left + w, top + h)))
    return out[:, :, None] if out.ndim == 2 else out


def stretch(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W, C) -> (h, w, C): both sides scaled to the target's, bilinear with antialiasing
    (Pillow's resize, as torchvision's Resize((h, w)) on PIL images); unchanged when already that size."""
    from PIL import Image

    H, W, C = pixels.shape
    h, w = size
    if (H, W) == (h, w):
        return pixels
    out = np.asarray(Image.fromarray(pixels[:, :, 0] if C == 1 else pixels).resize((w, h), Image.Resampling.BILINEAR))
    return out[:, :, None] if out.ndim == 2 else out


def resize_pixels(pixels: np.ndarray, size: tuple[int, int], mode: str = "resize") -> np.ndarray:
    """uint8 (H, W, C) at ``size`` by ``mode``: resize (shorter side, centre crop) or stretch."""
    if mode not in RESIZE_MODES:
        raise CnnlabError(f"unknown resize mode '{mode}' (valid: {', '.join(RESIZE_MODES)})")
    return resize_center(pixels, size) if mode == "resize" else stretch(pixels, size)


def resize_images(images: np.ndarray, size: tuple[int, int], mode: str = "resize") -> np.ndarray:
    """uint8 (N, C, H, W) -> (N, C, h, w), each image as ``resize_pixels`` does it."""
    N, C, H, W = images.shape
    if (H, W) == tuple(size):
        return images
    out = np.empty((N, C, *size), dtype=np.uint8)
    for i in range(N):
        out[i] = resize_pixels(images[i].transpose(1, 2, 0), size, mode).transpose(2, 0, 1)
    return out


def convert_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 (N, C, H, W) with ``channels`` channels: gray repeated to RGB, or RGB to Pillow's 'L'
    (L = (19595 R + 38470 G + 7471 B + 2**15) >> 16, ITU-R 601-2 luma, as Pillow computes it)."""
    C = images.shape[1]
    if C == channels:
        return images
    if (C, channels) == (1, 3):
        return np.repeat(images, 3, axis=1)
    if (C, channels) == (3, 1):
        rgb = images.astype(np.uint32)
        luma = (rgb[:, 0] * 19595 + rgb[:, 1] * 38470 + rgb[:, 2] * 7471 + 0x8000) >> 16
        return luma.astype(np.uint8)[:, None]
    raise CnnlabError(f"cannot convert {C}-channel images to {channels} channels (valid: 1 or 3)")
