"""``cnnlab eval RUN_DIR``: evaluate a finished run again and write eval-<split>.json and its figures."""

from __future__ import annotations

import json

HELP = "evaluate a trained run: metrics per class, mistakes, timing"
ORDER = 21
DESCRIPTION = ("Evaluate a run's best (or last) checkpoint on its test (or validation) split, in the run's own "
               "precision: loss, top-1/top-5, confusion matrix, per-class precision/recall/F1, the most-confused "
               "pairs, the highest-loss mistakes, ROC-AUC and PR for two classes, latency and throughput. "
               "Writes eval-<split>.json and figures into the run folder; summary.json's once-evaluated test "
               "result is left as it was.")
EPILOG = """\
examples: cnnlab eval runs/fashion_mnist-20261122-153000
          cnnlab eval runs/fashion_mnist-20261122-153000 --split val --checkpoint last
          cnnlab eval runs/fashion_mnist-20261122-153000 --tta flip --no-timing --json
          cnnlab eval runs/fashion_mnist-20261122-153000 --int8"""


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", help="a run directory written by cnnlab train").complete = "directory"
    parser.add_argument("--split", default="test", help="test or val (default: test)")
    parser.add_argument("--checkpoint", default="best",
                        help="best or last (default: best, the epoch of the best validation metric)")
    parser.add_argument("--tta", default=None,
                        help="test-time augmentation, none or flip (default: the run's own train.tta)")
    parser.add_argument("--int8", action="store_true",
                        help="evaluate the int8 model of 'cnnlab quantize' (writes eval-<split>-int8.json)")
    parser.add_argument("--no-timing", action="store_true", help="skip the latency and throughput measurement")
    parser.add_argument("--json", action="store_true", help="print eval-<split>.json's content instead of tables")


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def print_evaluation(record: dict) -> None:
    from cnnlab.cli.table import print_table

    top5 = f", top-5 {pct(record['top5'])}" if record["top5"] is not None else ""
    model = "int8 model of the " if record.get("int8") else ""
    print(f"{record['split']} set, {record['images']:,} images, {model}{record['checkpoint']} checkpoint "
          f"(epoch {record['epoch']}), tta {record['tta']}: loss {record['loss']:.4f}, "
          f"top-1 {pct(record['top1'])}{top5} ({record['seconds']:.2f} s)")
    rows = [[c["class"], f"{c['precision']:.4f}", f"{c['recall']:.4f}", f"{c['f1']:.4f}", f"{int(c['support']):,}"]
            for c in record["per_class"]]
    total = f"{sum(int(c['support']) for c in record['per_class']):,}"
    rows += [[f"{kind} avg", *(f"{record['averages'][kind][m]:.4f}" for m in ("precision", "recall", "f1")), total]
             for kind in ("macro", "weighted")]
    print_table(["class", "precision", "recall", "F1", "support"], rows, title="\nper class")
    classes, matrix = record["classes"], record["confusion"]
    if len(classes) <= 20:
        short = [c[:10] for c in classes]
        print_table(["true \\ predicted", *short], [[s, *map(str, row)] for s, row in zip(short, matrix)],
                    title="\nconfusion matrix (counts; eval-*.json also has it row-normalized)")
    if record["most_confused"]:
        print_table(["true", "predicted", "images"],
                    [[p["true"], p["predicted"], str(p["count"])] for p in record["most_confused"]],
                    title="\nmost confused")
    if record["binary"]:
        b = record["binary"]
        print(f"\ntwo classes ({b['positive_class']} positive): ROC-AUC {b['roc_auc']:.4f}, "
              f"average precision {b['average_precision']:.4f}")
    if record["timing"]:
        t = record["timing"]
        lat, thr = t["latency"], t["throughput"]
        print(f"\ninference ({t['setting']}, {t['device']}): batch 1 latency median {lat['median_ms']:.2f} ms, "
              f"p95 {lat['p95_ms']:.2f} ms; batch {thr['batch']} throughput {thr['images_per_s']:,.0f} images/s")


def run(args) -> int:
    from cnnlab.analysis.evaluation import evaluate_run, write_evaluation
    from cnnlab.report import write_report
    from cnnlab.report.evaluation import write_eval_figures

    evaluation, gallery = evaluate_run(args.run_dir, split=args.split, checkpoint=args.checkpoint, tta=args.tta,
                                       timing=not args.no_timing, int8=args.int8)
    record = evaluation.to_dict()
    figures = write_eval_figures(args.run_dir, record, gallery)
    path = write_evaluation(args.run_dir, evaluation)  # last: its presence means the figures are there
    report = write_report(args.run_dir)  # report.html gains the evaluation's section
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    print_evaluation(record)
    print(f"\nwrote {path}")
    for figure in figures:
        print(f"wrote {figure}")
    print(f"updated {report}")
    return 0
