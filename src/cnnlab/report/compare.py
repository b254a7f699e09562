"""What ``cnnlab compare`` writes: table.md, table.csv, best_recipe.yaml and a self-contained compare.html.

table.csv has one row per run with its numbers unformatted (for pandas or a spreadsheet); the
others show the grouped table, where repeats over seeds are mean ± sample std. Everything is
drawn from a ``Comparison`` (``cnnlab.analysis.compare``), itself read only from run folders.
"""

from __future__ import annotations

import csv
import html
import io
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from cnnlab.analysis.compare import Comparison, GroupRow
from cnnlab.atomic import atomic_write_text
from cnnlab.report.html import STYLE, _img, grid_table
from cnnlab.report.plots import png_bytes

COLUMNS = [  # header, RunRow field, format; integers show their range over seeds, not a mean
    ("best val acc", "best_val_acc", ".4f"), ("best epoch", "best_epoch", "d"),
    ("final train acc", "final_train_acc", ".4f"), ("test acc", "test_acc", ".4f"),
    ("train time (s)", "train_time_s", ".1f"), ("inference images/s", "images_per_s", ",.0f"),
    ("parameters", "parameters", ",d"),
]
CSV_FIELDS = ["seed", "status", "reason", "best_val_acc", "best_epoch", "final_train_acc", "test_acc",
              "train_time_s", "images_per_s", "parameters"]
CURVES = [("val_acc", "validation accuracy"), ("train_acc", "training accuracy"),
          ("val_loss", "validation loss"), ("train_loss", "training loss")]
LEGEND_GROUPS = 10  # groups drawn in colour and named in the legend; the rest are thin grey lines
NOWRAP = "#groups td,#runs td{white-space:nowrap}"  # '0.8123 ± 0.0040' on one line
SEED_STYLES = ["-", "--", ":", "-."]  # one line style per seed of a group


# --- the table as text ---------------------------------------------------------------------------


def show(value: Any) -> str:
    """A config value in a cell: 0.1, adamw, [1, 16, 16]; '-' where the run has no such key."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def cell(group: GroupRow, name: str, fmt: str) -> str:
    """'0.8123', or '0.8123 ± 0.0040' over seeds, with '(n=k)' when only k of the runs have it;
    integers (epochs, parameters) as '12' or their range '9-14'."""
    stat = group.stat(name)
    if stat is None:
        return "-"
    if fmt.endswith("d"):
        values = [getattr(r, name) for r in group.runs if getattr(r, name) is not None]
        low, high = min(values), max(values)
        text = format(low, fmt) if low == high else f"{low:{fmt}}-{high:{fmt}}"
    else:
        text = format(stat.mean, fmt) if stat.std is None else f"{stat.mean:{fmt}} ± {stat.std:{fmt}}"
    return text + (f" (n={stat.n})" if stat.n < len(group.runs) else "")


def table(comparison: Comparison, *, per_run: bool = False) -> tuple[list[str], list[list[str]]]:
    """(headers, rows of text cells): one row per group (mean ± std over its n seeds), or per run."""
    groups = [GroupRow(r.values, [r]) for r in comparison.runs] if per_run else comparison.groups
    first = ["run"] if per_run else []
    head = first + comparison.varied + ["n", "seeds"] + [c[0] for c in COLUMNS] + ["status"]
    rows = [([g.runs[0].path.name] if per_run else []) + [show(g.values.get(k)) for k in comparison.varied]
            + [str(len(g.runs)), ", ".join(map(str, g.seeds))]
            + [cell(g, name, fmt) for _, name, fmt in COLUMNS] + [g.status] for g in groups]
    return head, rows


def label(values: Mapping[str, Any], varied: list[str]) -> str:
    """The varied values as the legend shows them: 'optim.lr=0.1, optim.name=adamw'."""
    return ", ".join(f"{k}={show(values.get(k))}" for k in varied)


def notes(comparison: Comparison) -> list[str]:
    """Why each run that did not simply complete has its status, and what was left out."""
    return comparison.notes + [f"{r.path.name}: {r.status}: {r.reason}" for r in comparison.runs if r.reason]


# --- the files -----------------------------------------------------------------------------------


def csv_text(comparison: Comparison) -> str:
    """One row per run, best first: its folder, the varied values, then the numbers as read."""
    def raw(value: Any) -> str:
        if value is None:
            return ""
        return json.dumps(value) if isinstance(value, (list, dict)) else str(value)

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["run", *comparison.varied, *CSV_FIELDS])
    for run in comparison.runs:
        writer.writerow([str(run.path), *(raw(run.values.get(k)) for k in comparison.varied),
                         *(raw(getattr(run, name)) for name in CSV_FIELDS)])
    return buffer.getvalue()


def _heading(comparison: Comparison) -> str:
    varied = ", ".join(comparison.varied) or "nothing but the seed"
    return (f"{len(comparison.runs)} runs in {len(comparison.groups)} groups, best {comparison.metric} first "
            f"(failed and diverged last); the runs vary {varied}")


def markdown(comparison: Comparison) -> str:
    """The grouped table as GitHub markdown, with the notes under it."""
    head, rows = table(comparison)

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    text = [f"# cnnlab compare\n\n{_heading(comparison)}.\n", line(head), line(["---"] * len(head))]
    text += [line(r) for r in rows]
    if comparison.best is not None:
        text += ["", f"Best: `{comparison.best.path}` (its config: best_recipe.yaml)."]
    text += ["", *(f"- {n}" for n in notes(comparison))] if notes(comparison) else []
    return "\n".join(text) + "\n"


def curves_png(comparison: Comparison) -> bytes | None:
    """Validation and training accuracy and loss per epoch, every run overlaid: one colour per
    group (the varied values in the legend), one line style per seed. None when no run has an epoch."""
    if not any(r.rows for r in comparison.runs):
        return None
    fig = Figure(figsize=(11, 7.5), layout="constrained")  # constrained: room for the legend below
    axes = list(fig.subplots(2, 2, sharex=True).ravel())
    for g, group in enumerate(comparison.groups):
        named = g < LEGEND_GROUPS
        name = label(group.values, comparison.varied) or group.runs[0].path.name
        for k, run in enumerate(sorted(group.runs, key=lambda r: r.seed)):
            if not run.rows:  # diverged in its first epoch: no epoch to draw, and no legend entry
                continue
            for ax, (key, _) in zip(axes, CURVES):
                points = [(r.epoch, getattr(r, key)) for r in run.rows]
                ax.plot([p[0] for p in points], [p[1] for p in points], SEED_STYLES[k % len(SEED_STYLES)],
                        color=f"C{g}" if named else "0.75", linewidth=1.6 if named else 0.8,
                        label=f"{name} (seed {run.seed})" if named and key == "val_acc" else None)
    for ax, (_, title) in zip(axes, CURVES):
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs
    for ax in axes[2:]:
        ax.set_xlabel("epoch")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=8)
    return png_bytes(fig)


def _html_table(head: list[str], rows: list[list[str]], table_id: str) -> str:
    return f"<div class=wide>{grid_table(head, rows, table_id)}</div>"


def page(comparison: Comparison, curves: bytes | None) -> str:
    """compare.html: the grouped table, the overlaid curves, the best recipe, the importances and
    every run; one file, images embedded."""
    sources = ", ".join(str(s) for s in comparison.sources)
    parts = ["<h1>cnnlab compare</h1>", f"<p>{html.escape(_heading(comparison))}. From {html.escape(sources)}.</p>",
             "<h2>Runs</h2>", _html_table(*table(comparison), "groups")]
    if notes(comparison):
        parts.append("<ul>" + "".join(f"<li class=warn>{html.escape(n)}</li>" for n in notes(comparison)) + "</ul>")
    if curves is not None:
        parts += ["<h2>Learning curves</h2>", _img(curves, "accuracy and loss per epoch, every run")]
    parts.append("<h2>Best recipe</h2>")
    if comparison.best_recipe is None:
        parts.append("<p>no run completed: there is no best recipe</p>")
    else:
        parts += [f"<p>{html.escape(str(comparison.best.path))}; saved as best_recipe.yaml "
                  "(cnnlab train best_recipe.yaml trains it again)</p>",
                  f"<pre>{html.escape(comparison.best_recipe)}</pre>"]
    for found in comparison.importances:
        parts.append(f"<h2>Parameter importances: study {html.escape(found.study)}</h2>"
                     f"<p>{html.escape(found.note)}</p>")
        if found.values:
            parts.append(_html_table(["parameter", "importance"],
                                     [[p, f"{v:.4f}"] for p, v in found.values.items()], "importances"))
    parts += ["<h2>Every run</h2>", _html_table(*table(comparison, per_run=True), "runs")]
    return (f"<!doctype html><html><head><meta charset=utf-8><title>cnnlab compare</title>"
            f"<style>{STYLE}{NOWRAP}</style></head><body>{''.join(parts)}</body></html>\n")


def default_out(comparison: Comparison) -> Path:
    """compare/ inside the sweep when one sweep alone is compared, else ./compare-<time>."""
    if len(comparison.sweeps) == 1 and len(comparison.sources) == 1:
        return comparison.sweeps[0] / "compare"
    return Path(f"compare-{time.strftime('%Y%m%d-%H%M%S')}")


def write_comparison(comparison: Comparison, out: str | Path) -> list[Path]:
    """Write table.csv, table.md, best_recipe.yaml (when a run completed) and compare.html into
    ``out``, each atomically; returns their paths."""
    out = Path(out)
    files = {"table.csv": csv_text(comparison), "table.md": markdown(comparison)}
    if comparison.best_recipe is not None:
        files["best_recipe.yaml"] = comparison.best_recipe
    files["compare.html"] = page(comparison, curves_png(comparison))
    for name, text in files.items():
        atomic_write_text(out / name, text)
    return [out / name for name in files]


__all__ = ["table", "show", "cell", "label", "notes", "csv_text", "markdown", "curves_png", "page",
           "default_out", "write_comparison"]
