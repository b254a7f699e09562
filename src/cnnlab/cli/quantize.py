"""``cnnlab quantize RUN_DIR``: post-training static int8, and its size/speed/accuracy table."""

from __future__ import annotations

import json

HELP = "int8-quantize a trained run: size, speed and accuracy against fp32"
ORDER = 25
DESCRIPTION = ("Quantize a run's model to int8 after training (torchao PT2E with the X86 Inductor quantizer: "
               "per-channel int8 weights, uint8 activations calibrated on training images), save it as "
               "quantized/int8.safetensors, and print fp32, bf16 (where the CPU computes it) and int8 side by "
               "side: file size, batch-1 latency and batch-256 throughput eager, batch-256 throughput compiled, "
               "validation and test top-1. The table is written to quantize.json. 'cnnlab eval --int8' and "
               "'cnnlab predict --int8' then use the int8 model.")
EPILOG = """\
examples: cnnlab quantize runs/fashion_mnist-20261122-153000
          cnnlab quantize runs/convnet-20261122-153000 --calibration-batches 32 --no-compile
          cnnlab quantize runs/convnet-20261122-153000 --json"""


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", help="a run directory written by cnnlab train").complete = "directory"
    parser.add_argument("--checkpoint", default="best", help="best or last (default: best)")
    parser.add_argument("--calibration-batches", type=int, default=16,
                        help="batches of 128 training images the observers see (default: 16)")
    parser.add_argument("--no-compile", action="store_true",
                        help="skip the compiled throughput column (torch.compile takes seconds per model)")
    parser.add_argument("--json", action="store_true", help="print quantize.json's content instead of the table")


def size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def print_quantization(record: dict) -> None:
    from cnnlab.cli.table import print_table

    def number(value, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    base = record["rows"][0]
    rows = []
    for row in record["rows"]:
        ratio = record["ratios"].get(row["precision"])
        rows.append([row["precision"], f"{size(row['file_bytes'])}" + (f" ({ratio['size']:.2f}x)" if ratio else ""),
                     f"{number(row['latency_ms'], '.2f')} ms", number(row["eager_images_per_s"], ",.0f"),
                     number(row["compiled_images_per_s"], ",.0f"), f"{100 * row['val_top1']:.2f}%",
                     f"{100 * row['test_top1']:.2f}%"])
    print(f"{record['model']}, {record['checkpoint']} checkpoint (epoch {record['epoch']}), "
          f"{record['calibration_images']:,} calibration images, {record['threads']} threads, "
          f"{record['cpu_capability']}, tta {record['tta']}")
    print_table(["precision", "file", "latency b1", "img/s eager", "img/s compiled", "val top-1", "test top-1"],
                rows, title="")
    for name, ratio in record["ratios"].items():
        parts = [f"size {ratio['size']:.2f}x"]
        for key, label in (("eager_throughput", "eager"), ("compiled_throughput", "compiled")):
            if ratio[key] is not None:
                parts.append(f"{label} throughput {ratio[key]:.2f}x")
        parts.append(f"test {ratio['test_points']:+.2f} points")
        print(f"{name} against {base['precision']}: " + ", ".join(parts))
    layers = record["layers"]
    kept = f"; left in fp32: {', '.join(layers['fp32'])}" if layers["fp32"] else ""
    print(f"int8 layers: {len(layers['int8'])} conv/linear{kept}")


def run(args) -> int:
    from cnnlab.analysis.quantize_table import quantize_run, write_quantized
    from cnnlab.report import write_report

    record, blob = quantize_run(args.run_dir, checkpoint=args.checkpoint, calibration=args.calibration_batches,
                                compile=not args.no_compile)
    weights, path = write_quantized(args.run_dir, record, blob)
    report = write_report(args.run_dir)  # report.html gains the quantization section
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    print_quantization(record)
    print(f"\nwrote {weights}\nwrote {path}\nupdated {report}")
    return 0
