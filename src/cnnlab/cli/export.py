"""``cnnlab export RUN_DIR --format onnx|pt2``: the run's model as one file, checked against PyTorch."""

from __future__ import annotations

HELP = "export a trained run to ONNX or torch.export (.pt2), checked against PyTorch"
ORDER = 24
DESCRIPTION = ("Export a run's best (or last) checkpoint through torch.export, as an ONNX file (torch.onnx, dynamo) "
               "or a .pt2 ExportedProgram. The file takes uint8 images (N, C, H, W) at the run's input size and "
               "does the run's scaling and normalization inside (--no-fold: float32 input, normalized by the "
               "caller); the batch N is dynamic. Before anything is written the file is run (onnxruntime on CPU, "
               "or torch.export.load) on up to 256 of the run's test images and on batches of 1 and 3, and must "
               "agree with PyTorch within 1e-4. Writes model.<format>, preprocessing.json (channels, size, resize "
               "rule, mean/std, classes, how to turn logits into probabilities) and export.json into "
               "RUN_DIR/export/; an export of the other format stays.")
EPILOG = """\
examples: cnnlab export runs/fashion_mnist-20261122-153000 --format onnx
          cnnlab export runs/fashion_mnist-20261122-153000 --format pt2 --checkpoint last
          cnnlab export runs/fashion_mnist-20261122-153000 --format onnx --output model.onnx --no-fold"""


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", help="a run directory written by cnnlab train").complete = "directory"
    parser.add_argument("--format", default="onnx", help="onnx or pt2 (default: onnx)")
    parser.add_argument("--checkpoint", default="best", help="best or last (default: best)")
    parser.add_argument("--output", default=None, metavar="PATH",
                        help="the model file, or a folder for it (default: RUN_DIR/export/model.<format>); "
                             "preprocessing.json goes beside it").complete = "file"
    parser.add_argument("--no-fold", action="store_true",
                        help="export the bare model: float32 input, scaled and normalized by the caller")


def size_text(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e5 else f"{count / 1e3:.1f} kB"


def run_hint(result) -> str:
    """One line that runs the written file from Python."""
    C, H, W = result.input_shape
    images = f"{result.input_dtype} array (N, {C}, {H}, {W})"
    if result.format == "onnx":
        return (f"run it: onnxruntime.InferenceSession(\"{result.path}\").run(None, {{\"images\": {images}}})[0]"
                f"  # logits (N, {result.outputs})")
    return (f"run it: torch.export.load(\"{result.path}\").module()(torch.as_tensor({images}))"
            f"  # logits (N, {result.outputs})")


def run(args) -> int:
    from cnnlab.analysis.export import FORMATS, export_run
    from cnnlab.errors import unknown_name

    if args.format not in FORMATS:
        raise unknown_name("--format", args.format, FORMATS)
    result = export_run(args.run_dir, fmt=args.format, checkpoint=args.checkpoint, output=args.output,
                        fold_preprocessing=not args.no_fold)
    C, H, W = result.input_shape
    opset = f", opset {result.opset}" if result.opset is not None else ""
    print(f"wrote {result.path} ({size_text(result.bytes)}{opset}): {result.input_dtype} (N, {C}, {H}, {W}) -> "
          f"logits (N, {result.outputs}), {result.checkpoint} checkpoint (epoch {result.epoch})")
    print(f"wrote {result.preprocessing_path}")
    print(f"wrote {result.record_path}")
    runtime = "onnxruntime" if result.format == "onnx" else "torch.export.load"
    sizes = ", ".join(str(n) for n in sorted(set(result.batch_sizes)))
    print(f"checked {result.images_checked} images ({result.checked_on}) in batches of {sizes}: "
          f"max |{runtime} - PyTorch| = {result.max_abs_diff:.2g} (limit {result.tolerance:.0e})")
    print(f"exported in {result.export_seconds:.1f} s, checked in {result.check_seconds:.1f} s")
    print(run_hint(result))
    return 0
