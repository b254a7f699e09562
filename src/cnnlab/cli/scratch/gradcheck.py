"""``cnnlab scratch gradcheck``: every layer's and model's gradients against numerical ones."""

from __future__ import annotations

HELP = "check every layer's and model's gradients numerically (float64)"
ORDER = 10
DESCRIPTION = ("Compare every backward with centred-difference gradients and print the relative errors; "
               "exit 1 if any exceeds the threshold.")


def add_arguments(parser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="random inputs and weights (default 0)")
    parser.add_argument("--only", default="layers,conv,models", help="comma-separated groups: layers, conv, models")


def run(args) -> int:
    from cnnlab.errors import unknown_name
    from cnnlab.scratch import gradcheck_suite as suite

    groups = tuple(g.strip() for g in args.only.split(",") if g.strip())
    for group in groups:
        if group not in suite.GROUPS:
            raise unknown_name("gradcheck group", group, suite.GROUPS)
    rows = suite.run_gradient_checks(args.seed, groups)
    print(suite.format_table(rows))
    failed = [r for r in rows if not r.rel_error <= suite.THRESHOLD]
    worst = max(rows, key=lambda r: r.rel_error)
    print(f"\n{len(rows) - len(failed)}/{len(rows)} gradients within {suite.THRESHOLD:.0e} "
          f"(largest: {worst.rel_error:.1e}, {worst.layer} {worst.gradient}); "
          f"numerical reference in {suite.REFERENCE.__name__}, h = {suite.H:.1e}")
    return 1 if failed else 0
