"""``export_run``: a run's model as one ONNX or ``torch.export`` (.pt2) file, checked against PyTorch.

The exported graph takes what an image decodes to, uint8 pixels (N, C, H, W) at the run's input
size, and does the run's preprocessing inside (``Preprocessed``: x / 255, then the recorded
normalization, whatever its scheme: per channel, per pixel, ZCA), so a caller in any language only resizes and feeds pixels;
``fold_preprocessing=False`` exports the bare model instead (float32, already normalized). Either
way ``preprocessing.json`` beside the file spells out the whole recipe. The batch is dynamic.

Both formats go through ``torch.export`` (non-strict: the forward runs as Python on fake tensors);
ONNX then through ``torch.onnx.export(..., dynamo=True)``. Before anything is written, the file's
own bytes are loaded back (onnxruntime on CPU, or ``torch.export.load``) and run on up to 256 of
the run's test images and on batches of 1 and 3; every output must agree with the eager fp32
model within 1e-4 (issue 10). A layer the exporter cannot handle is named in the error: for
``torch.export``, the deepest module of the model on the failing call stack; for the ONNX
translation, the ``nn_module_stack`` of the graph node that has no ONNX function.

RUN_DIR/export/
  model.onnx, model.pt2  the exported files (exporting one format leaves the other's)
  preprocessing.json     how to prepare images and read the outputs, for any language
  normalization.npz      the pixel and zca schemes' arrays that preprocessing.json names (numpy.load)
  export.json            per model file: format, bytes, sha256, images checked, max |difference|, opset, versions
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import re
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnlab.atomic import atomic_write_bytes, atomic_write_json
from cnnlab.data.normalize import Normalization
from cnnlab.errors import CnnlabError, first_line, unknown_name
from cnnlab.run import DataRecord, RunDir
from cnnlab.run.normalization import NORMALIZATION_FILE
from cnnlab.run.restore import restore_model, restore_normalization, restore_splits

FORMATS = {"onnx": ".onnx", "pt2": ".pt2"}
TOLERANCE = 1e-4  # issue 10: onnxruntime must agree with PyTorch within 1e-4
CHECK_IMAGES = 256  # test images run through both: enough to meet most code paths, a second on a CPU
CHUNK = 64  # images per checked batch: the activations of a 224x224 VGG for 256 images would be ~3 GB
EXAMPLE_BATCH = 2  # torch.export turns a size-1 dimension into a constant; an example of 2 keeps N symbolic
EXTRA_BATCHES = (1, 3)  # also checked: 1 was never traced, 3 is odd; the batch really is dynamic
INPUT, OUTPUT = "images", "logits"  # the graph's input and output names
EXPORT_DIR = "export"
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")  # torch.onnx's dynamo exporter, and the checker
RESIZE_RULE = ("the shorter side to the input's (bilinear, antialiased), then the centre crop "
               "(torchvision Resize + CenterCrop); skipped when the image already has the input size")


class Preprocessed(nn.Module):
    """``model`` behind the run's preprocessing: uint8 images (N, C, H, W) -> its logits (N, K)."""

    def __init__(self, model: nn.Module, stats: Normalization) -> None:
        super().__init__()
        self.model = model
        # the module Normalization.normalize runs: its operands are buffers, so graph constants
        self.normalize = stats.module()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(self.normalize(images))  # uint8 (N, C, H, W) -> float32 (N, C, H, W) -> (N, K)


@dataclass(frozen=True)
class ExportResult:
    """What ``export_run`` wrote, and how closely the written file agrees with PyTorch."""

    format: str  # onnx or pt2
    path: Path  # the model file
    preprocessing_path: Path  # preprocessing.json, beside the model file
    record_path: Path  # RUN_DIR/export/export.json
    bytes: int
    sha256: str
    input_dtype: str  # uint8 (preprocessing folded in) or float32 (normalized by the caller)
    input_shape: tuple[int, int, int]  # C, H, W; the batch N is dynamic
    outputs: int  # logits per image: the classes, or 1 for a binary loss
    checkpoint: str
    epoch: int | None
    images_checked: int
    checked_on: str  # "test split", or why random pixels stood in for it
    batch_sizes: tuple[int, ...]
    max_abs_diff: float  # over every batch, against the eager fp32 model
    tolerance: float
    opset: int | None  # the ONNX default opset; None for pt2
    versions: dict[str, str]
    export_seconds: float
    check_seconds: float

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items() if k != "record_path"}


def export_run(run_path: str | Path, *, fmt: str = "onnx", checkpoint: str = "best", output: str | Path | None = None,
               fold_preprocessing: bool = True) -> ExportResult:
    """Export the run's ``checkpoint`` as ``fmt`` (onnx or pt2) to ``output`` (default
    RUN_DIR/export/model.<fmt>), check the file against the eager model, then write it with
    preprocessing.json beside it and its record in RUN_DIR/export/export.json. Nothing is
    written unless the check passes; every error is one ``CnnlabError`` line."""
    if fmt not in FORMATS:
        raise unknown_name("export format", fmt, FORMATS)
    if fmt == "onnx":
        need_onnx()
    run = RunDir.open(run_path)
    data = run.data_record()
    target = model_path(run, fmt, output)
    stats = restore_normalization(run.path)
    model = restore_model(run.path, checkpoint).float().cpu().eval()
    epoch = run.checkpoints.resolve(checkpoint)
    images, checked_on = check_images(run.path, data)
    module = Preprocessed(model, stats).eval() if fold_preprocessing else model

    def model_input(pixels: np.ndarray) -> np.ndarray:  # what the exported graph takes
        return pixels if fold_preprocessing else stats.normalize(torch.as_tensor(pixels)).numpy()

    start = time.perf_counter()
    program = capture(module, torch.as_tensor(model_input(images[:EXAMPLE_BATCH])), model, fmt)
    blob, opset = to_onnx(program, model, fold_preprocessing) if fmt == "onnx" else to_pt2(program)
    export_seconds = time.perf_counter() - start
    start = time.perf_counter()
    exported = load_onnx(blob) if fmt == "onnx" else load_pt2(blob)
    batches = [*(images[i:i + CHUNK] for i in range(0, len(images), CHUNK)), *(images[:n] for n in EXTRA_BATCHES)]
    diff = max_difference(exported, model, stats, batches, model_input)
    check_seconds = time.perf_counter() - start
    if not diff <= TOLERANCE:  # also refuses NaN
        raise CnnlabError(f"the exported {fmt} file disagrees with PyTorch by up to {diff:.3g} (limit {TOLERANCE:.0e}) "
                          f"on {len(images)} images ({checked_on}); nothing was written")
    C, H, W = data.image_shape
    result = ExportResult(
        format=fmt, path=target, preprocessing_path=target.parent / "preprocessing.json",
        record_path=run.path / EXPORT_DIR / "export.json", bytes=len(blob), sha256=hashlib.sha256(blob).hexdigest(),
        input_dtype="uint8" if fold_preprocessing else "float32", input_shape=(C, H, W),
        outputs=data.num_outputs or len(data.classes), checkpoint=str(checkpoint), epoch=epoch,
        images_checked=len(images), checked_on=checked_on, batch_sizes=tuple(len(b) for b in batches),
        max_abs_diff=diff, tolerance=TOLERANCE, opset=opset,
        versions={"torch": torch.__version__, **{name: version(name) for name in ONNX_PACKAGES if fmt == "onnx"}},
        export_seconds=export_seconds, check_seconds=check_seconds)
    write_export(run, data, stats, result, blob)
    return result


# --- inputs -----------------------------------------------------------------------------------------


def need_onnx() -> None:
    """One line naming the packages ONNX export lacks, before any slow work."""
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise CnnlabError(f"exporting to ONNX needs {', '.join(missing)}, which is not installed: "
                          f"pip install {' '.join(missing)}")


def model_path(run: RunDir, fmt: str, output: str | Path | None) -> Path:
    """Where the model file goes: RUN_DIR/export/model.<fmt>, or ``output`` (a file or a folder)."""
    if output is None:
        return run.path / EXPORT_DIR / f"model{FORMATS[fmt]}"
    path = Path(output)
    if path.is_dir():
        return path / f"model{FORMATS[fmt]}"
    if path.suffix != FORMATS[fmt]:
        raise CnnlabError(f"output {path} should end in {FORMATS[fmt]} for the {fmt} format")
    return path


def check_images(run_path: Path, data: DataRecord) -> tuple[np.ndarray, str]:
    """Up to CHECK_IMAGES uint8 images (n >= 3, N, C, H, W) of the run's test split, and where they
    came from; random pixels when the split cannot be read here (its dataset is elsewhere)."""
    try:
        splits, _ = restore_splits(run_path)
        images, where = splits.test_images[:CHECK_IMAGES], "test split"
    except CnnlabError as err:
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (CHECK_IMAGES, *data.image_shape), dtype=np.uint8)
        where = f"random pixels: the test split cannot be read here ({err})"
    needed = max(EXAMPLE_BATCH, *EXTRA_BATCHES)
    if len(images) < needed:  # a tiny test split: repeat it
        images = images[np.arange(needed) % len(images)]
    return np.ascontiguousarray(images), where


# --- export -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Keep the exporters' progress lines, warnings and partial graphs off the terminal: the error
    is one line (torch.export prints a failing graph straight to sys.stderr)."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def capture(module: nn.Module, example: torch.Tensor, model: nn.Module, fmt: str) -> torch.export.ExportedProgram:
    """``torch.export`` of ``module`` on ``example`` (N, C, H, W) with a dynamic batch; a failure names
    the layer of ``model`` whose forward was running."""
    batch = torch.export.Dim("batch", min=1)
    try:
        with quiet():
            return torch.export.export(module, (example,), dynamic_shapes=({0: batch},), strict=False)
    except Exception as err:
        raise layer_error(model, failing_layer(err, model), fmt, capture_reason(err)) from err


def to_pt2(program: torch.export.ExportedProgram) -> tuple[bytes, None]:
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return buffer.getvalue(), None


def to_onnx(program: torch.export.ExportedProgram, model: nn.Module, folded: bool) -> tuple[bytes, int]:
    """The ONNX bytes of ``program`` (weights inside) and their opset; a failure names the layer."""
    try:
        with quiet():
            onnx_program = torch.onnx.export(program, dynamo=True, verbose=False, input_names=[INPUT],
                                             output_names=[OUTPUT])
            onnx_program.rename_axes({onnx_program.model.graph.inputs[0].shape[0]: "batch"})  # was "s77"
            with tempfile.TemporaryDirectory() as folder:  # the IR serializes to a file; the run gets bytes
                onnx_program.save(Path(folder) / "model.onnx", external_data=False)
                blob = (Path(folder) / "model.onnx").read_bytes()
    except Exception as err:
        layer, why = onnx_failure(err, program, prefix="model." if folded else "")
        raise layer_error(model, layer, "onnx", why) from err
    return blob, int(onnx_program.model.opset_imports[""])


# --- naming the layer that failed -------------------------------------------------------------------


def exception_chain(err: BaseException) -> list[BaseException]:
    """``err`` and what caused it, outermost first, as Python's traceback display follows them."""
    chain = [err]
    while True:
        nxt = chain[-1].__cause__ or (None if chain[-1].__suppress_context__ else chain[-1].__context__)
        if nxt is None or nxt in chain:
            return chain
        chain.append(nxt)


def failing_layer(err: BaseException, model: nn.Module) -> str | None:
    """The qualified name of the deepest module of ``model`` whose forward is on ``err``'s call
    stack ('' for the model's own forward), or None when no frame of the model is there."""
    names = {id(module): name for name, module in model.named_modules()}
    for exc in reversed(exception_chain(err)):  # the innermost error was raised nearest the cause
        tb, found = exc.__traceback__, None
        while tb is not None:
            owner = tb.tb_frame.f_locals.get("self")  # nn.Module.__call__ and forward frames hold it
            if owner is not None and id(owner) in names:
                found = names[id(owner)]
            tb = tb.tb_next
        if found is not None:
            return found
    return None


def onnx_failure(err: BaseException, program: torch.export.ExportedProgram, prefix: str) -> tuple[str | None, str]:
    """(the layer whose graph node failed to translate, why), from the exporter's messages and the
    node's ``nn_module_stack``."""
    texts = [str(e) for e in exception_chain(err)]
    node_name = next((m[1] for t in texts if (m := re.search(r"translating node %(\w+)", t))), None)
    op = next((m[1] for t in texts if (m := re.search(r"No ONNX function found for <OpOverload\(op='([\w.]+)'", t))),
              None)
    why = (f"{op} has no ONNX translation in onnxscript {version('onnxscript')}" if op
           else first_line(exception_chain(err)[-1]))
    for node in program.graph.nodes:
        if node.name == node_name or (op and node_name is None and str(node.target).startswith(op + ".")):
            stack = list((node.meta.get("nn_module_stack") or {}).values())  # [(path, type)], outermost first
            path = stack[-1][0] if stack else ""
            if path.startswith(prefix):  # "model.features.act3" of Preprocessed -> "features.act3"
                return path[len(prefix):], why
            return None, why  # the wrapper's own operations, or the whole model's forward
    return None, why


def capture_reason(err: BaseException) -> str:
    """Why ``torch.export`` failed, in words for the common cases."""
    inner = exception_chain(err)[-1]
    text = first_line(inner)
    if "data-dependent" in text:
        return ("its Python control flow depends on tensor values, which torch.export cannot trace "
                "(use torch.where or torch.cond)")
    if ".numpy()" in text or ".tolist()" in text:
        return "it leaves PyTorch (.numpy() or .tolist()), which torch.export cannot trace"
    return f"{type(inner).__name__}: {text}"


def describe_layer(model: nn.Module, layer: str | None) -> str:
    """"layer 'features.act2' (ValueGate)", or "the model (ConvNet)" when no layer was found."""
    if layer:
        return f"layer '{layer}' ({type(model.get_submodule(layer)).__name__})"
    return f"the model ({type(model).__name__})"


def layer_error(model: nn.Module, layer: str | None, fmt: str, why: str) -> CnnlabError:
    return CnnlabError(f"cannot export {describe_layer(model, layer)} to {fmt}: {why}")


# --- the check --------------------------------------------------------------------------------------


def load_onnx(blob: bytes) -> Callable[[np.ndarray], np.ndarray]:
    """onnxruntime on CPU over the file's bytes: (N, C, H, W) -> logits (N, K)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: its C++ warnings bypass Python's sys.stderr
    session = onnxruntime.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
    return lambda x: session.run([OUTPUT], {INPUT: x})[0]


def load_pt2(blob: bytes) -> Callable[[np.ndarray], np.ndarray]:
    """``torch.export.load`` of the file's bytes: (N, C, H, W) -> logits (N, K)."""
    module = torch.export.load(io.BytesIO(blob)).module()
    return lambda x: module(torch.as_tensor(x)).numpy()


@torch.inference_mode()
def max_difference(exported: Callable[[np.ndarray], np.ndarray], model: nn.Module, stats: Normalization,
                   batches: list[np.ndarray], model_input: Callable[[np.ndarray], np.ndarray]) -> float:
    """The largest |exported - eager| over the uint8 ``batches`` (n, C, H, W); eager is the bare fp32
    model on ``Normalization.normalize``d images, as training and ``cnnlab predict`` run it."""
    diffs = []
    for pixels in batches:
        expected = model(stats.normalize(torch.as_tensor(pixels))).numpy()  # (n, K)
        got = np.asarray(exported(model_input(pixels)))
        if got.shape != expected.shape:
            raise CnnlabError(f"the exported model gives outputs of shape {got.shape} for a batch of {len(pixels)}, "
                              f"PyTorch {expected.shape}; nothing was written")
        diffs.append(np.abs(got.astype(np.float64) - expected).max())
    return float(np.max(diffs))  # NaN if any output is NaN


# --- the files --------------------------------------------------------------------------------------


def write_export(run: RunDir, data: DataRecord, stats: Normalization, result: ExportResult, blob: bytes) -> None:
    """The model file (and the normalization's arrays file, for pixel and zca), then preprocessing.json
    beside it, then export.json last: an entry there means that file and its preprocessing.json are
    whole. Entries of other model files are kept."""
    atomic_write_bytes(result.path, blob)
    name = data.normalization.get("file")  # the run's arrays file, its sha256 checked when stats was read
    if name:
        atomic_write_bytes(result.preprocessing_path.parent / name, (run.path / name).read_bytes())
    here = str(run.path.resolve())
    previous = read_json(result.preprocessing_path)
    models = previous.get("models") if previous.get("run") == here else None  # another run's: replaced
    models = models if isinstance(models, dict) else {}
    models[result.path.name] = model_entry(result)
    atomic_write_json(result.preprocessing_path, {**preprocessing(data, stats, result), "run": here,
                                                  "models": models})
    records = read_json(result.record_path)  # by file: the name in export/, or the path elsewhere
    inside = result.path.parent.resolve() == result.record_path.parent.resolve()
    key = result.path.name if inside else str(result.path)
    atomic_write_json(result.record_path, {**records, key: result.to_dict()})


def read_json(path: Path) -> dict:
    """A JSON object written earlier, or {} when there is none or it is damaged (it is rewritten)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def preprocessing(data: DataRecord, stats: Normalization, result: ExportResult) -> dict:
    """The run's preprocessing and output rule as data, so any language can feed the model."""
    C, H, W = data.image_shape
    classes = list(data.classes)
    if result.outputs == 1:
        probabilities = (f"one logit z per image: p({classes[1]}) = 1 / (1 + exp(-z)), "
                         f"p({classes[0]}) = 1 - p({classes[1]})")
    else:
        probabilities = "softmax over the K logits of each image: exp(z_k - max z) / sum_j exp(z_j - max z)"
    return {
        "image": {"channels": C, "color": "grayscale (Pillow 'L', ITU-R 601-2 luma)" if C == 1 else "RGB",
                  "height": H, "width": W, "dtype": "uint8", "layout": "NCHW (batch, channel, row, column)"},
        "resize": RESIZE_RULE,
        "normalize": normalize_entry(stats),
        "classes": classes,
        "output": {"name": OUTPUT, "shape": ["N", result.outputs], "meaning": "logits, one row per image",
                   "probabilities": probabilities},
    }


def normalize_entry(stats: Normalization) -> dict:
    """preprocessing.json's "normalize": the scheme's rule and values; pixel and zca name the arrays
    file written beside it (numpy.load reads it; each member is an .npy file)."""
    entry = stats.rule()
    if "arrays" in entry:
        entry["file"] = NORMALIZATION_FILE
    return entry


def model_entry(result: ExportResult) -> dict:
    """How one exported file takes its input: pixels (preprocessing inside) or normalized floats."""
    C, H, W = result.input_shape
    inside = ("the scaling (pixels / 255) and the normalization; resize first, as 'resize' says"
              if result.input_dtype == "uint8" else "nothing: resize, scale and normalize first, as 'resize' and "
              "'normalize' say")
    return {"format": result.format, "input": {"name": INPUT, "dtype": result.input_dtype, "shape": ["N", C, H, W]},
            "preprocessing_inside": inside}
