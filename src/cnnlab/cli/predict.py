"""``cnnlab predict RUN_DIR IMAGE...``: the top classes of image files, through the run's own preprocessing."""

from __future__ import annotations

import json

HELP = "classify image files with a trained run"
ORDER = 22
DESCRIPTION = ("Run image files (PNG, JPEG, ...: any size, any mode) through a run's model with the run's own "
               "preprocessing (its channels, input size and normalization) and print the top classes with their "
               "probabilities and the time taken. --fully-conv runs the convolutional form of the net on the whole "
               "image and prints its map of class scores.")
EPILOG = """\
examples: cnnlab predict runs/fashion_mnist-20261122-153000 shirt.png boot.jpg
          cnnlab predict runs/fashion_mnist-20261122-153000 shirt.png --top-k 3 --json
          cnnlab predict runs/convnet-20261122-153000 street.png --fully-conv
          cnnlab predict runs/fashion_mnist-20261122-153000 shirt.png --int8"""

MAP_SIDE = 16  # the largest score map printed as a grid of class numbers


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", help="a run directory written by cnnlab train").complete = "directory"
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files").complete = "file"
    parser.add_argument("--top-k", type=int, default=5, help="classes to show per image (default: 5)")
    parser.add_argument("--checkpoint", default="best", help="best or last (default: best)")
    parser.add_argument("--fully-conv", action="store_true",
                        help="keep each image's size and print the net's class-score map")
    parser.add_argument("--int8", action="store_true", help="use the int8 model that 'cnnlab quantize' saved")
    parser.add_argument("--json", action="store_true", help="print the answers as JSON")


def score_map_lines(prediction) -> list[str]:
    """The map's most probable class at each place, as class numbers (K <= 10) in a grid."""
    K, h, w = prediction.probs.shape
    best = prediction.probs.argmax(axis=0)  # (h, w)
    lines = [f"  class-score map {h}x{w}: the most probable class at each place"]
    if h <= MAP_SIDE and w <= MAP_SIDE and K <= 10:
        lines += ["    " + " ".join(str(c) for c in row) for row in best]
        lines.append("    " + ", ".join(f"{i} {name}" for i, name in enumerate(prediction.classes)))
    return lines


def run(args) -> int:
    from cnnlab.analysis.predict import Predictor, timed_predict
    from cnnlab.errors import CnnlabError

    if args.top_k < 1:
        raise CnnlabError(f"--top-k must be at least 1, got {args.top_k}")
    predictor = Predictor.from_run(args.run_dir, checkpoint=args.checkpoint, fully_conv=args.fully_conv,
                                   int8=args.int8)
    predictions, seconds = timed_predict(predictor, args.images)
    k = min(args.top_k, len(predictor.classes))
    if args.json:
        answers = [{"image": p.source, "top": [{"class": c, "probability": q} for c, q in p.top(k)],
                    **({"score_map": p.probs.tolist()} if args.fully_conv else {})} for p in predictions]
        print(json.dumps({"predictions": answers, "seconds": seconds}, indent=2))
        return 0
    width = max(len(c) for c in predictor.classes)
    for p in predictions:
        print(p.source)
        if args.fully_conv:
            print("\n".join(score_map_lines(p)))
            print("  averaged over the map:")
        for name, probability in p.top(k):
            print(f"  {name:<{width}}  {100 * probability:6.2f}%")
    count = len(predictions)
    print(f"{count} image{'s' if count != 1 else ''} in {1e3 * seconds:.1f} ms (decoding, resizing and the model)")
    return 0
