"""``Predictor``: a run's model with the run's own preprocessing, for image files and arrays.

``Predictor.from_run(RUN_DIR)(images)`` decodes each image with Pillow (EXIF rotation applied;
palette, RGBA, CMYK and 16-bit images converted), turns it into the run's channels, resizes
it to the run's input as the run's data was (``data.resize``: the shorter side and a centre crop,
torchvision's ``Resize`` + ``CenterCrop``, or both sides stretched), normalizes with the statistics recorded in the run, and returns the class
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
from cnnlab.data.images import ImageInput, as_pixels, resize_pixels
from cnnlab.data.normalize import Normalization
from cnnlab.engine.precision import DTYPES, Precision, resolve_device
from cnnlab.errors import CnnlabError
from cnnlab.models import to_fully_conv
from cnnlab.run import RunDir
from cnnlab.run.restore import restore_model, restore_normalization

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
                 stats: Normalization, precision: Precision, num_outputs: int, fully_conv: bool = False,
                 resize: str = "resize") -> None:
        self.classes, self.image_shape, self.stats, self.resize = classes, image_shape, stats, resize
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
        stats = restore_normalization(run.path)
        if fully_conv and stats.image_shape is not None:
            raise CnnlabError(f"--fully-conv takes images of any size, but this run's {stats.scheme} normalization "
                              f"is fit to {C}x{H}x{W} images; use it with runs normalized per channel")
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
        return cls(model, classes=list(data.classes), image_shape=(C, H, W), stats=stats, precision=precision,
                   num_outputs=data.num_outputs or len(data.classes), fully_conv=fully_conv,
                   resize=config.data.resize)

    def pixels(self, image: ImageInput) -> np.ndarray:
        """The uint8 (C, H, W) the model sees: the run's channels and, unless fully conv, its size."""
        C, H, W = self.image_shape
        pixels = as_pixels(image, C)
        if not self.fully_conv:
            pixels = resize_pixels(pixels, (H, W), self.resize)
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
