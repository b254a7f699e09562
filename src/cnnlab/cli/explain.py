"""``cnnlab explain RUN_DIR [--images N | IMAGE...]``: Grad-CAM, saliency, filters and activation maps of a run."""

from __future__ import annotations

HELP = "show where a trained run's model looks: Grad-CAM, saliency, filters, activations"
ORDER = 23
DESCRIPTION = ("For test images of a run (the first N) or image files, draw a Grad-CAM (pytorch-grad-cam) and an "
               "input-gradient saliency map (captum) against the predicted and the true class, the first conv "
               "layer's filters as a grid, and one image's activation maps at each stage. Writes explain.json "
               "and explain-*.png into the run folder, only once all of it succeeded. A model without a "
               "convolution (an MLP) gets saliency only.")
EPILOG = """\
examples: cnnlab explain runs/fashion_mnist-20261122-153000
          cnnlab explain runs/fashion_mnist-20261122-153000 --images 4 --checkpoint last
          cnnlab explain runs/fashion_mnist-20261122-153000 shirt.png boot.jpg
          cnnlab explain runs/resnet20-20261122-153000 --layer layer2"""


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", help="a run directory written by cnnlab train").complete = "directory"
    parser.add_argument("image_files", nargs="*", metavar="IMAGE",
                        help="image files to explain (no true class); default: test images").complete = "file"
    parser.add_argument("--images", type=int, default=None, metavar="N",
                        help="explain the first N test images (default: 8, at most 16)")
    parser.add_argument("--checkpoint", default="best", help="best or last (default: best)")
    parser.add_argument("--layer", default=None,
                        help="Grad-CAM's layer, a module name (default: the last with a spatial map)")


def peak_text(point: list[int] | None) -> str:
    return "-" if point is None else f"({point[0]}, {point[1]})"


def print_explanation(record: dict) -> None:
    from cnnlab.cli.table import print_table

    count = len(record["images"])
    layer = f"Grad-CAM at {record['target_layer']} ({'x'.join(map(str, record['target_shape']))} map)" \
        if record["target_layer"] else "no Grad-CAM"
    print(f"{count} image{'s' if count != 1 else ''}, {record['checkpoint']} checkpoint (epoch {record['epoch']}), "
          f"{record['model']}: {layer}; saliency |d score / d input|")
    rows = [[i["source"], i["true"] or "-", f"{i['predicted']} {100 * i['probability']:.1f}%",
             peak_text(i["peaks"].get("gradcam_predicted")), peak_text(i["peaks"].get("saliency_predicted"))]
            for i in record["images"]]
    print_table(["image", "true", "predicted", "Grad-CAM peak", "saliency peak"], rows,
                title="\npeaks (row, col) of the maps against the predicted class")
    if record["stages"]:
        print("\nstages: " + ", ".join(f"{s['name']} {'x'.join(map(str, s['shape']))}" for s in record["stages"]))
    if record["note"]:
        print(f"\nnote: {record['note']}")


def run(args) -> int:
    from cnnlab.analysis.explain import MAX_IMAGES, explain_run, write_explanation
    from cnnlab.errors import CnnlabError
    from cnnlab.report import write_report
    from cnnlab.report.explain import write_explain_figures

    if args.images is not None and args.image_files:
        raise CnnlabError("give either --images N or IMAGE files, not both")
    if args.images is not None and not 1 <= args.images <= MAX_IMAGES:
        raise CnnlabError(f"--images must be 1 to {MAX_IMAGES}, got {args.images}")
    explanation, maps = explain_run(args.run_dir, images=args.image_files or None, count=args.images,
                                    checkpoint=args.checkpoint, layer=args.layer)
    figures = write_explain_figures(args.run_dir, explanation.to_dict(), maps)
    explanation.figures = [f.name for f in figures]
    path = write_explanation(args.run_dir, explanation)  # last: its presence means the figures are there
    report = write_report(args.run_dir)  # report.html gains the explanations
    print_explanation(explanation.to_dict())
    print()
    for written in (*figures, path):
        print(f"wrote {written}")
    print(f"updated {report}")
    return 0
