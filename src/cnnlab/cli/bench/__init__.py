"""``cnnlab bench NAME``: the speed benchmarks (see docs/BENCHMARKS.md).

One module per benchmark, discovered as the top-level commands are; each parses its options
and prints what a measuring function of ``cnnlab.bench`` returns.
"""

HELP = "run a benchmark and print figures with ratios to a baseline"
ORDER = 60
DESCRIPTION = ("Run a benchmark. Each one times a baseline in the same process and prints ratios against it; "
               "docs/BENCHMARKS.md records the figures of this machine.")
