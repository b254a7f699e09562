"""``cnnlab explain``: where a run's model looks, and what its first layer and its stages see.

For each image, two maps against its predicted class and against its true class (image files
have none):

- Grad-CAM (Selvaraju et al., ICCV 2017) through pytorch-grad-cam: the target layer's maps A_k
  weighted by the spatial mean of d score / d A_k, summed, ReLU, resized to the input (bilinear)
  and scaled to [0, 1] per image;
- input-gradient saliency (Simonyan, Vedaldi & Zisserman, ICLR 2014 workshop) through captum's
  ``Saliency``: |d score / d input|, the maximum over the colour channels as in the paper, taken
  on the normalized image that the model sees.

A class's score is its logit; a one-logit model (BCE, hinge) scores the positive class z and the
other -z, as pytorch-grad-cam's ``BinaryClassifierOutputTarget`` does.

Grad-CAM's layer is by default the last module whose output is a spatial map (4-D, larger than
1x1): the last block, which is where pytorch-grad-cam's README points (``model.layer4[-1]`` for
a ResNet, ``model.features[-1]`` for a VGG), rather than the last ``nn.Conv2d``, after which a
residual sum or an activation may still come. A model without such a layer (an MLP) gets
saliency only, and a note saying why: a user asking why an MLP decided gets the map it has.

A stage is the last module to finish at each spatial size (forward hooks, in the order the
modules finish, so a container's name wins over its last child's): ``layer1..3`` of a CIFAR
ResNet, ``features.act1`` ... of the lab ConvNet. Its activation maps are those of the first
image. The first conv layer's filters come as weights (O, I, k, k) and as a grid.

The model runs in fp32 on the CPU whatever the run trained in: the maps are gradients, which
bf16 autocast would round to 8 bits, and a few images need no accelerator. Nothing is written
here: ``write_explanation`` writes explain.json, after the figures, only when all succeeded.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from cnnlab.analysis.predict import probabilities
from cnnlab.data.images import as_pixels, resize_pixels
from cnnlab.data.normalize import Normalization
from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.run import RunDir
from cnnlab.run.restore import restore_model, restore_normalization, restore_splits

DEFAULT_IMAGES = 8
MAX_IMAGES = 16  # a row each in explain-gradcam.png; more makes a figure too tall to read
TARGETS = ("predicted", "true")  # the classes each map is drawn against, in the figure's column order


@dataclass
class Traced:
    """One module's output for the first image, as a forward hook saw it."""

    name: str
    module: nn.Module
    output: torch.Tensor  # that image's output: (C, h, w) for a spatial map


@dataclass
class Maps:
    """The arrays behind explain.json, for N images of (C, H, W)."""

    pixels: np.ndarray  # uint8 (N, C, H, W): the images as the model saw them, before normalization
    probs: np.ndarray  # (N, K) class probabilities
    labels: np.ndarray | None  # (N,) true classes; None for image files
    gradcam: dict[str, np.ndarray]  # "predicted"/"true" -> (N, H, W) in [0, 1]; {} without a spatial layer
    saliency: dict[str, np.ndarray]  # "predicted"/"true" -> (N, H, W), >= 0
    target_layer: str | None  # Grad-CAM's layer
    target_shape: tuple[int, ...] | None  # its output (C, h, w) for one image
    stages: list[tuple[str, np.ndarray]]  # (module name, the first image's activations (C, h, w))
    first_conv: str | None
    filters: np.ndarray | None  # (O, I, k, k) weights of the first conv layer

    @property
    def predicted(self) -> np.ndarray:
        return self.probs.argmax(axis=1)  # (N,)


@dataclass
class Explanation:
    """explain.json: what was explained, with what, and where each map peaks."""

    checkpoint: str  # best or last
    epoch: int | None  # the checkpoint's epoch
    model: str
    classes: list[str]
    image_shape: list[int]  # C, H, W the model sees
    images: list[dict]  # index, source, true, predicted, probability, true_probability, peaks {map: [row, col]}
    target_layer: str | None  # Grad-CAM's layer; None for a model without a spatial map
    target_shape: list[int] | None  # its output (C, h, w)
    first_conv: dict | None  # name, shape (O, I, k, k)
    stages: list[dict]  # name, shape (C, h, w): the first image's activation maps
    methods: dict[str, str]  # how each map is computed, with the library versions
    figures: list[str] = field(default_factory=list)  # set by the caller that draws them
    note: str = ""
    explained_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))

    def to_dict(self) -> dict:
        return asdict(self)


class ClassScores(nn.Module):
    """(N, K) class scores: the model's logits, or for one logit z the pair (-z, z)."""

    def __init__(self, model: nn.Module, num_outputs: int) -> None:
        super().__init__()
        self.model, self.single_logit = model, num_outputs == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.model(x)  # (N, K) or (N, 1)
        return torch.cat([-z[:, :1], z[:, :1]], dim=1) if self.single_logit else z


def trace_modules(model: nn.Module, image: torch.Tensor) -> list[Traced]:
    """Every submodule's tensor output for ``image`` (1, C, H, W), in the order the modules finish.

    A module called more than once (a shared ReLU) is left out: its name points at no one place in
    the net, and Grad-CAM's hooks would see several outputs.
    """
    seen: list[Traced] = []
    calls: dict[str, int] = {}

    def hook(name: str):
        def save(module, inputs, output):
            calls[name] = calls.get(name, 0) + 1
            if isinstance(output, torch.Tensor):
                seen.append(Traced(name, module, output[0].detach().float().clone()))  # clone: in-place ReLUs follow
        return save

    handles = [m.register_forward_hook(hook(name)) for name, m in model.named_modules() if name]
    try:
        with torch.no_grad():
            model(image)
    finally:
        for handle in handles:
            handle.remove()
    return [t for t in seen if calls[t.name] == 1]


def spatial_stages(traced: list[Traced]) -> list[Traced]:
    """The last module to finish at each spatial size, in forward order (maps larger than 1x1)."""
    stages: list[Traced] = []
    for t in traced:
        if t.output.dim() != 3 or t.output.shape[1] * t.output.shape[2] <= 1:
            continue
        if stages and stages[-1].output.shape[1:] == t.output.shape[1:]:
            stages[-1] = t  # the same size: a later module (or the container) ends this stage
        else:
            stages.append(t)
    return stages


def pick_layer(traced: list[Traced], stages: list[Traced], name: str | None) -> Traced | None:
    """Grad-CAM's layer: ``name``, or the last stage (None when the model has no spatial map)."""
    if name is None:
        return stages[-1] if stages else None
    found = next((t for t in traced if t.name == name), None)
    if found is None:
        maps = [t.name for t in traced if t.output.dim() == 3]
        raise CnnlabError(f"no layer '{name}' in the model{did_you_mean(name, maps)} "
                          f"(layers with spatial maps: {', '.join(maps) or 'none'})")
    if found.output.dim() != 3:
        raise CnnlabError(f"layer '{name}' gives no spatial map (its output is {tuple(found.output.shape)} "
                          "for one image); Grad-CAM needs a (C, h, w) map")
    return found


def gradcam_maps(scores: nn.Module, layer: nn.Module, x: torch.Tensor, classes: np.ndarray) -> np.ndarray:
    """Grad-CAM of each image (N, C, H, W) against its class in ``classes`` (N,): (N, H, W) in [0, 1]."""
    try:  # here, not at the top: pytorch-grad-cam imports OpenCV and ttach, seconds that other commands skip
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError as err:
        raise CnnlabError(f"Grad-CAM needs pytorch-grad-cam ({err}): pip install grad-cam") from err

    cam = GradCAM(model=scores, target_layers=[layer])
    try:
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(int(c)) for c in classes])
    finally:
        cam.activations_and_grads.release()  # not ``with``: its __exit__ prints and swallows an IndexError


def saliency_maps(scores: nn.Module, x: torch.Tensor, classes: np.ndarray) -> np.ndarray:
    """|d score / d x| of each image (N, C, H, W) for its class in ``classes`` (N,), max over channels:
    (N, H, W)."""
    try:  # here, not at the top: a second or more to import
        from captum.attr import Saliency
    except ImportError as err:
        raise CnnlabError(f"saliency maps need captum ({err}): pip install captum") from err

    x = x.detach().clone().requires_grad_(True)  # captum would set it, with a warning
    grads = Saliency(scores).attribute(x, target=torch.as_tensor(classes, dtype=torch.long), abs=True)  # (N, C, H, W)
    return grads.amax(dim=1).detach().numpy()  # (N, H, W)


def peak(heatmap: np.ndarray) -> list[int] | None:
    """[row, col] of a map's maximum (the first in row-major order); None when the map is flat
    (a Grad-CAM that the ReLU zeroed everywhere: no positive evidence for that class)."""
    if not np.isfinite(heatmap).all() or heatmap.max() <= heatmap.min():
        return None
    row, col = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return [int(row), int(col)]


def filter_grid(weights: np.ndarray, *, columns: int | None = None, padding: int = 1) -> np.ndarray:
    """Filters (O, I, k, k) side by side: (rows (k + p) + p, columns (k + p) + p, I) in [0, 1].

    Each filter is scaled to its own min-max, with ``padding`` black pixels around each: the
    layout of torchvision's ``make_grid(normalize=True, scale_each=True)``, ``columns`` filters
    a row (default: a square grid). Filters over other than 1 or 3 channels show their mean.
    """
    w = np.asarray(weights, dtype=np.float32)
    if w.shape[1] not in (1, 3):
        w = w.mean(axis=1, keepdims=True)
    O, I, kh, kw = w.shape
    columns = min(O, columns or math.ceil(math.sqrt(O)))
    rows = math.ceil(O / columns)
    low = w.min(axis=(1, 2, 3), keepdims=True)
    high = w.max(axis=(1, 2, 3), keepdims=True)
    scaled = (w - low) / np.maximum(high - low, 1e-5)  # (O, I, k, k) in [0, 1]
    grid = np.zeros((rows * (kh + padding) + padding, columns * (kw + padding) + padding, I), np.float32)
    for i, f in enumerate(scaled):
        top, left = (i // columns) * (kh + padding) + padding, (i % columns) * (kw + padding) + padding
        grid[top:top + kh, left:left + kw] = f.transpose(1, 2, 0)  # (k, k, I)
    return grid


def explain_batch(model: nn.Module, pixels: np.ndarray, stats: Normalization, *, num_outputs: int,
                  labels: np.ndarray | None = None, layer: str | None = None) -> Maps:
    """Grad-CAM and saliency of uint8 images (N, C, H, W) against their predicted and (given ``labels``
    (N,)) true classes, the first conv's filters and the first image's stages. The model is moved to
    fp32 on the CPU, in place."""
    model = model.float().cpu().eval()
    for p in model.parameters():
        p.requires_grad_(True)  # the gradients flow through every layer, frozen ones included
    x = stats.normalize(torch.as_tensor(np.ascontiguousarray(pixels)))  # (N, C, H, W) float32
    traced = trace_modules(model, x[:1])
    stages = spatial_stages(traced)
    target = pick_layer(traced, stages, layer)
    conv = next((t for t in traced if isinstance(t.module, nn.Conv2d)), None)
    with torch.no_grad():
        probs = probabilities(model(x), num_outputs).numpy()  # (N, K)
    classes = {"predicted": probs.argmax(axis=1)}
    if labels is not None:
        classes["true"] = np.asarray(labels, dtype=np.int64)
    scores = ClassScores(model, num_outputs)
    return Maps(
        pixels=np.asarray(pixels), probs=probs, labels=classes.get("true"),
        gradcam={k: gradcam_maps(scores, target.module, x, c) for k, c in classes.items()} if target else {},
        saliency={k: saliency_maps(scores, x, c) for k, c in classes.items()},
        target_layer=target.name if target else None, target_shape=tuple(target.output.shape) if target else None,
        stages=[(s.name, s.output.numpy()) for s in stages],
        first_conv=conv.name if conv else None,
        filters=conv.module.weight.detach().float().numpy().copy() if conv else None)


def image_records(maps: Maps, classes: list[str], sources: list[str]) -> list[dict]:
    """explain.json's row for each image: its classes, probabilities and the peak of each map."""
    rows = []
    for i, source in enumerate(sources):
        predicted = int(maps.predicted[i])
        true = None if maps.labels is None else int(maps.labels[i])
        peaks = {f"{method}_{target}": peak(m[i])
                 for method, per_target in (("gradcam", maps.gradcam), ("saliency", maps.saliency))
                 for target, m in per_target.items()}
        rows.append({"index": i, "source": source, "true": None if true is None else classes[true],
                     "predicted": classes[predicted], "probability": float(maps.probs[i, predicted]),
                     "true_probability": None if true is None else float(maps.probs[i, true]), "peaks": peaks})
    return rows


def methods(target_layer: str | None) -> dict[str, str]:
    """How each map of explain.json is computed, with the versions of the libraries that did it."""
    described = {
        "saliency": f"captum {version('captum')} Saliency: |d score / d input| on the normalized input, "
                    "max over channels (Simonyan et al. 2014)",
        "score": "the class logit; with one logit z, z for the positive class and -z for the other",
        "peak": "[row, col] of the map's maximum in input pixels; null where the map is zero everywhere"}
    if target_layer is not None:
        described["gradcam"] = (f"pytorch-grad-cam {version('grad-cam')} GradCAM at '{target_layer}': "
                                "ReLU(sum_k mean(d score / d A_k) A_k), resized to the input, scaled to [0, 1] "
                                "(Selvaraju et al. 2017)")
    return described


class Inputs(NamedTuple):
    """What ``explain_run`` explains: the run's model and the images, as its preprocessing gives them."""

    model: nn.Module
    pixels: np.ndarray  # uint8 (N, C, H, W)
    labels: np.ndarray | None  # (N,); None for image files
    sources: list[str]
    stats: Normalization


def load_inputs(run: RunDir, images: list[str | Path] | None, count: int, checkpoint: str) -> Inputs:
    """The checkpoint's model, and the image files (resized and cropped as ``cnnlab predict`` does,
    needing no dataset) or the first ``count`` test images."""
    data = run.data_record()
    C, H, W = data.image_shape
    model = restore_model(run.path, checkpoint)  # a run without that checkpoint is refused here
    if images:
        mode = run.config().data.resize
        pixels = np.stack([resize_pixels(as_pixels(p, C), (H, W), mode).transpose(2, 0, 1) for p in images])
        return Inputs(model, pixels, None, [str(p) for p in images], restore_normalization(run.path))
    splits, stats = restore_splits(run.path)
    n = min(count, len(splits.test_labels))
    return Inputs(model, splits.test_images[:n], splits.test_labels[:n], [f"test[{i}]" for i in range(n)], stats)


def explain_run(run_path: str | Path, *, images: list[str | Path] | None = None, count: int | None = None,
                checkpoint: str = "best", layer: str | None = None) -> tuple[Explanation, Maps]:
    """Explain a run's ``checkpoint`` on image files, or on the first ``count`` test images (default 8).

    Returns explain.json's record (its ``figures`` empty: the caller draws them) and the arrays.
    """
    if checkpoint not in ("best", "last"):
        raise CnnlabError(f"unknown checkpoint '{checkpoint}' (valid: best, last)")
    if images and count is not None:
        raise CnnlabError("give image files or a number of test images, not both")
    count = DEFAULT_IMAGES if count is None else count
    wanted = len(images) if images else count
    if not 1 <= wanted <= MAX_IMAGES:
        raise CnnlabError(f"explain 1 to {MAX_IMAGES} images at a time, not {wanted}: each is a row of the figure")
    run = RunDir.open(run_path)
    config, data = run.config(), run.data_record()
    inputs = load_inputs(run, images, count, checkpoint)
    maps = explain_batch(inputs.model, inputs.pixels, inputs.stats, num_outputs=data.num_outputs or len(data.classes),
                         labels=inputs.labels, layer=layer)
    notes = [] if maps.target_layer else [f"{config.model.name} has no layer with a spatial map: no Grad-CAM, "
                                          "filters or activation maps; input-gradient saliency only"]
    if not images and len(inputs.sources) < count:
        notes.append(f"the test split has {len(inputs.sources)} images; all are explained")
    explanation = Explanation(
        checkpoint=checkpoint, epoch=run.checkpoints.resolve(checkpoint), model=config.model.name,
        classes=list(data.classes), image_shape=list(data.image_shape),
        images=image_records(maps, list(data.classes), inputs.sources), target_layer=maps.target_layer,
        target_shape=list(maps.target_shape) if maps.target_shape else None,
        first_conv={"name": maps.first_conv, "shape": list(maps.filters.shape)} if maps.first_conv else None,
        stages=[{"name": name, "shape": list(a.shape)} for name, a in maps.stages], methods=methods(maps.target_layer),
        note="; ".join(notes))
    return explanation, maps


def write_explanation(run_path: str | Path, explanation: Explanation) -> Path:
    """explain.json in the run folder (atomically)."""
    return RunDir.open(run_path).write_json("explain.json", explanation.to_dict())
