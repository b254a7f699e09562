"""report.html: one self-contained page (images embedded) built from the run directory alone."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.report.plots import confusion_png, curves_png, per_class_metrics
from cnnlab.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from cnnlab.run.rundir import read_metrics

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .8em;border-bottom:1px solid #eee;text-align:left}
th{background:#f6f6f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%}pre{background:#f6f8fa;padding:1em;overflow:auto;font-size:.85em}
.wide{overflow-x:auto}.status{display:inline-block;padding:.1em .6em;border-radius:1em;background:#e8f0fe}
"""


def _fmt(value: Any, key: str = "") -> str:
    if isinstance(value, float):
        if "images" in key:
            return f"{value:,.0f}"
        if "time" in key:
            return f"{value:.1f}"
        return f"{value:.4f}"
    return html.escape(str(value))


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v, k)}</td></tr>" for k, v in rows if v is not None)
    return f"<table>{cells}</table>"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _key_figures(summary: dict) -> list[tuple[str, Any]]:
    best, test, times = summary.get("best") or {}, summary.get("test") or {}, summary.get("time") or {}
    model, device = summary.get("model") or {}, summary.get("device") or {}
    return [
        ("status", summary.get("status")),
        ("model", f"{model.get('name')} ({model.get('parameters', 0):,} parameters)" if model else None),
        ("best epoch", best.get("epoch")),
        ("best val accuracy", best.get("val_acc")),
        ("best val loss", best.get("val_loss")),
        ("test accuracy (evaluated once)", test.get("acc")),
        ("test loss", test.get("loss")),
        ("test top-5", test.get("top5")),
        ("first batch loss / expected", f"{summary['first_batch_loss']:.4f} / {summary['expected_initial_loss']:.4f}"
         if summary.get("first_batch_loss") is not None and summary.get("expected_initial_loss") else None),
        ("training wall time (s)", times.get("train_wall_s")),
        ("train images/s (last epoch)", times.get("train_images_per_s")),
        ("device", f"{device.get('type')} {device.get('precision')}" if device else None),
    ]


def _class_table(matrix: np.ndarray, classes: list[str]) -> str:
    m = per_class_metrics(matrix)
    rows = "".join(
        f"<tr><td>{html.escape(c)}</td><td class=num>{m['precision'][i]:.3f}</td><td class=num>{m['recall'][i]:.3f}</td>"
        f"<td class=num>{m['f1'][i]:.3f}</td><td class=num>{int(m['support'][i])}</td></tr>"
        for i, c in enumerate(classes))
    return ("<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
            f"{rows}</table>")


def write_report(run_path: str | Path, confusion: np.ndarray | None = None, classes: list[str] | None = None) -> Path:
    """Draw curves.png and confusion.png and write report.html from the files of ``run_path``.

    ``confusion`` (K, K) test counts and ``classes`` may be given by a caller that has not
    written confusion.json yet; they are saved there first.
    """
    run = Path(run_path)
    if confusion is not None:
        atomic_write_json(run / "confusion.json", {"split": "test", "classes": list(classes or []),
                                                   "matrix": np.asarray(confusion).tolist()})
    rows = read_metrics(run)
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() else {}
    best_epoch = (summary.get("best") or {}).get("epoch")
    sections = [f"<h1>cnnlab run {html.escape(run.name)}</h1>",
                f"<p><span class=status>{html.escape(str(summary.get('status', 'unknown')))}</span></p>",
                "<h2>Key figures</h2>", _table(_key_figures(summary))]
    if rows:
        png = curves_png(rows, best_epoch)
        atomic_write_bytes(run / "curves.png", png)
        sections += ["<h2>Learning curves</h2>", _img(png, "loss and accuracy per epoch")]
    if (run / "confusion.json").is_file():
        data = json.loads((run / "confusion.json").read_text())
        matrix, names = np.array(data["matrix"]), data["classes"] or [str(i) for i in range(len(data["matrix"]))]
        png = confusion_png(matrix, names, f"{data.get('split', 'test')} set")
        atomic_write_bytes(run / "confusion.png", png)
        sections += [f"<h2>Confusion matrix ({html.escape(data.get('split', 'test'))} set)</h2>",
                     _img(png, "confusion matrix"), _class_table(matrix, names)]
    if rows:
        keys = [k for k in rows[0] if rows[0][k] is not None]
        head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
        body = "".join("<tr>" + "".join(f"<td class=num>{_fmt(r.get(k), k)}</td>" for k in keys) + "</tr>" for r in rows)
        sections += ["<h2>Metrics per epoch</h2>", f"<div class=wide><table><tr>{head}</tr>{body}</table></div>"]
    if (run / "config.yaml").is_file():
        sections += ["<h2>Config</h2>", f"<pre>{html.escape((run / 'config.yaml').read_text())}</pre>"]
    if summary.get("environment"):
        sections += ["<h2>Environment</h2>", f"<pre>{html.escape(json.dumps(summary['environment'], indent=2))}</pre>"]
    page = (f"<!doctype html><html><head><meta charset=utf-8><title>cnnlab {html.escape(run.name)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>\n")
    atomic_write_text(run / "report.html", page)
    return run / "report.html"
