"""``Predictor``: a run's model with the run's own preprocessing, for image files and arrays.

``Predictor.from_run(RUN_DIR)(images)`` decodes each image with Pillow (EXIF rotation applied;
palette, RGBA, CMYK and 16-bit images converted), turns it into the run's channels, resizes
its shorter side to the run's input and crops the centre (torchvision's ``Resize`` +
``CenterCrop``), normalizes with the statistics recorded in the run, and returns the class
probabilities. ``fully_conv=True`` keeps the image's own size and runs the convolutional form
of the net (``cnnlab.models.to_fully_conv``), giving a map of class scores (practical work Q4-6).

Only what one prediction needs is imported (not torchvision, matplotlib or scikit-learn), so
``cnnlab predict`` answers about a second after ``import torch`` would.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnlab.config import RunConfig
from cnnlab.data.normalize import ChannelStats
from cnnlab.engine.precision import DTYPES, Precision, resolve_device
from cnnlab.errors import CnnlabError
from cnnlab.models import to_fully_conv
from cnnlab.run import RunDir
from cnnlab.run.restore import restore_model

ImageInput = str | Path | np.ndarray  # a file, or uint8 (H, W) / (H, W, C) / (C, H, W) pixels


def run_precision(run: RunDir, config: RunConfig) -> Precision:
    """The precision and layout the run trained with, on its device when this machine has one."""
    settings = run.settings() or {"precision": "fp32", "channels_last": False}
    device = resolve_device("auto" if config.train.device.startswith("cuda") else config.train.device)
    name = settings["precision"]
    if name == "fp16" and device.type != "cuda":
        name = "bf16"  # fp16 autocast is CUDA's; a CPU runs a GPU run's model in bf16 instead
    return Precision(device, DTYPES.get(name), bool(settings["channels_last"]))


def probabilities(logits: torch.Tensor, num_outputs: int) -> torch.Tensor:
    """(N, K) class probabilities: softmax over K logits, or for one logit z (BCE, hinge)
    [1 - sigmoid(z), sigmoid(z)]. Works on score maps (N, K, h, w) too (dim 1)."""
    logits = logits.float()
    if num_outputs == 1:
        p = torch.sigmoid(logits[:, :1])
        return torch.cat([1 - p, p], dim=1)
    return torch.softmax(logits, dim=1)


def read_image(path: str | Path, channels: int) -> np.ndarray:
    """uint8 (H, W, C) pixels of an image file in ``channels`` (1: grayscale, 3: RGB)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise CnnlabError(f"{path}: no such image file")
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)  # camera photos stored sideways
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit: scale, do not clip, to 8 bits
                pixels = np.asarray(image, dtype=np.float64)
                image = Image.fromarray((pixels * 255.0 / max(pixels.max(), 1.0)).round().astype(np.uint8))
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                image = image.convert("RGBA")
                background = Image.new("RGBA", image.size, (0, 0, 0, 255))  # transparent = black, as the
                image = Image.alpha_composite(background, image)  # datasets' backgrounds
            array = np.asarray(image.convert("L" if channels == 1 else "RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise CnnlabError(f"{path} is not an image that Pillow can read ({err})") from err
    return array[:, :, None] if array.ndim == 2 else array  # (H, W, C)


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
    if array.shape[2] != channels:  # gray <-> RGB by Pillow, as for files (ITU-R 601-2 luma)
        from PIL import Image

        converted = np.asarray(Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
                               .convert("L" if channels == 1 else "RGB"))
        array = converted[:, :, None] if converted.ndim == 2 else converted
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


@dataclass
class Prediction:
    """One image's answer: probabilities (K,) or, fully convolutional, a score map (K, h, w)."""

    source: str
    probs: np.ndarray
    classes: list[str]

    def top(self, k: int) -> list[tuple[str, float]]:
        """The k most probable classes with their probabilities (over the whole map when fully conv)."""
        p = self.probs if self.probs.ndim == 1 else self.probs.reshape(len(self.classes), -1).mean(axis=1)
        order = np.argsort(-p, kind="stable")[:k]
        return [(self.classes[i], float(p[i])) for i in order]


class Predictor:
    """A run's model and preprocessing; call it on a list of image files or uint8 arrays."""

    def __init__(self, model: nn.Module, *, classes: list[str], image_shape: tuple[int, int, int],
                 stats: ChannelStats, precision: Precision, num_outputs: int, fully_conv: bool = False) -> None:
        self.classes, self.image_shape, self.stats = classes, image_shape, stats
        self.precision, self.num_outputs, self.fully_conv = precision, num_outputs, fully_conv
        layout = torch.channels_last if precision.channels_last else torch.contiguous_format
        self.model = model.to(precision.device, memory_format=layout).eval()

    @classmethod
    def from_run(cls, run_path: str | Path, *, checkpoint: str = "best", fully_conv: bool = False,
                 int8: bool = False) -> Predictor:
        """The run's model (``int8``: the one ``cnnlab quantize`` saved, on the CPU) and preprocessing."""
        run = RunDir.open(run_path)
        config, data = run.config(), run.data_record()
        C, H, W = data.image_shape
        if int8:
            if fully_conv:
                raise CnnlabError("--int8 and --fully-conv cannot be combined: the int8 model is quantized "
                                  "for the run's input size only")
            from cnnlab.analysis.quantize import load_quantized

            model = load_quantized(run.path).module
            precision = Precision(torch.device("cpu"), None, channels_last=True)  # fp32 in and out, int8 inside
        else:
            model = restore_model(run.path, checkpoint)
            precision = run_precision(run, config)
        if fully_conv:
            model = to_fully_conv(model, (C, H, W)).eval()
        return cls(model, classes=list(data.classes), image_shape=(C, H, W),
                   stats=ChannelStats.from_dict(data.normalization), precision=precision,
                   num_outputs=data.num_outputs or len(data.classes), fully_conv=fully_conv)

    def pixels(self, image: ImageInput) -> np.ndarray:
        """The uint8 (C, H, W) the model sees: the run's channels and, unless fully conv, its size."""
        C, H, W = self.image_shape
        pixels = as_pixels(image, C)
        if not self.fully_conv:
            pixels = resize_center(pixels, (H, W))
        return pixels.transpose(2, 0, 1)  # (C, H, W)

    @torch.inference_mode()
    def __call__(self, images: Sequence[ImageInput]) -> list[Prediction]:
        """Class probabilities for each image (one batch; fully conv, one image at a time)."""
        prepared = [self.pixels(image) for image in images]
        groups = [[p] for p in prepared] if self.fully_conv else [prepared]
        probs = []
        for group in groups:
            x = self.stats.normalize(torch.as_tensor(np.stack(group))).to(self.precision.device)  # (N, C, H, W)
            if self.precision.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with self.precision.autocast():
                logits = self.model(x)  # (N, K) or fully conv (N, K, h, w)
            probs += list(probabilities(logits, self.num_outputs).cpu().numpy())
        names = [str(i) if isinstance(i, (str, Path)) else f"array {k}" for k, i in enumerate(images)]
        return [Prediction(name, p, self.classes) for name, p in zip(names, probs)]


def timed_predict(predictor: Predictor, images: Sequence[ImageInput]) -> tuple[list[Prediction], float]:
    """The predictions and the seconds they took, decoding included."""
    start = time.perf_counter()
    predictions = predictor(images)
    return predictions, time.perf_counter() - start
