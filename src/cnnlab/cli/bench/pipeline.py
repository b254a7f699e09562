"""``cnnlab bench pipeline``: the data pipeline's share of a training step."""

from __future__ import annotations

from cnnlab.cli.table import print_table

HELP = "data pipeline overhead in a training step (convnet, batch 256)"
ORDER = 10
DESCRIPTION = ("Time a training step on pre-made batches against the full step with the DeviceLoader, and the "
               "loader alone against torch's DataLoader with torchvision's per-sample transforms.")


def add_arguments(parser) -> None:
    parser.add_argument("--model", default="convnet")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=40, help="batches per timed epoch")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of (a) and (b); medians are kept")
    parser.add_argument("--precision", default="auto", help="auto | bf16 | fp32")


def run(args) -> int:
    from cnnlab.bench.pipeline import step_overhead, torchvision_loader_rate

    result = step_overhead(args.model, args.batch_size, args.batches, args.rounds, args.precision)
    baseline = torchvision_loader_rate(args.batch_size, args.batch_size * 20)
    print(f"{result['model']} at batch {result['batch']}, 3x32x32, random crop (pad 4) + flip, {result['precision']}, "
          f"{result['threads']} threads; medians of {args.rounds} rounds of {args.batches} batches")
    print_table(["measure", "value"], [
        ["step on pre-made batches (ms)", f"{result['step_ms']:.2f}"],
        ["full step with DeviceLoader (ms)", f"{result['full_ms']:.2f}"],
        ["pipeline overhead (full / pre-made - 1)", f"{result['overhead']:.1%}"],
        ["DeviceLoader alone (images/s)", f"{result['loader_images_per_s']:,.0f}"],
        ["DeviceLoader alone per batch / step (an upper bound on the overhead)",
         f"{result['batch'] / result['loader_images_per_s'] * 1e3 / result['step_ms']:.1%}"],
        ["DataLoader + torchvision per-sample transforms (images/s)", f"{baseline:,.0f}"],
        ["DeviceLoader speedup over DataLoader", f"{result['loader_images_per_s'] / baseline:.1f}x"],
    ])
    return 0
