"""report.html: one self-contained page (images embedded) built from the run directory alone."""

from __future__ import annotations

import base64
import dataclasses
import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.analysis.classification import per_class_metrics
from cnnlab.analysis.curves import read_curves
from cnnlab.report.evaluation import eval_figure_names
from cnnlab.report.explain import explain_figure_names
from cnnlab.report.plots import confusion_png, curves_png
from cnnlab.run import RunDir, Summary
from cnnlab.run.rundir import evaluation_key

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .8em;border-bottom:1px solid #eee;text-align:left}
th{background:#f6f6f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%}pre{background:#f6f8fa;padding:1em;overflow:auto;font-size:.85em}
.wide{overflow-x:auto}.warn{color:#a40}.status{display:inline-block;padding:.1em .6em;border-radius:1em;background:#e8f0fe}
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


def _key_figures(summary: Summary | None) -> list[tuple[str, Any]]:
    if summary is None:  # killed, or still running: no summary yet
        return [("status", "no summary: the run is still running, or was killed (cnnlab train --resume)")]
    best, test, times, model = summary.best, summary.test, summary.time, summary.model
    d = summary.divergence
    return [
        ("status", summary.status + (f" ({summary.failure})" if summary.failure else "")),
        ("model", f"{model.get('name')} ({model.get('parameters', 0):,} parameters)"),
        ("best epoch", best and best.epoch),
        ("best val accuracy", best and best.val_acc),
        ("best val loss", best and best.val_loss),
        ("test accuracy (evaluated once)", test and test.acc),
        ("test loss", test and test.loss),
        ("test top-5", test and test.top5),
        ("diverged at", d and f"epoch {d.epoch}" + (f", step {d.step}" if d.step else "")
         + f": the {d.what} was not finite (lr {d.lr:.3g}, last finite loss {d.last_finite_loss})"),
        ("first batch loss / expected", f"{summary.first_batch_loss:.4f} / {summary.expected_initial_loss:.4f}"
         if summary.first_batch_loss is not None and summary.expected_initial_loss else None),
        ("training wall time (s)", times.get("train_wall_s")),
        ("train images/s (last epoch)", times.get("train_images_per_s")),
        ("device", f"{summary.device.get('type')} {summary.device.get('precision')}"),
    ]


def _class_table(matrix: np.ndarray, classes: list[str]) -> str:
    m = per_class_metrics(matrix)
    rows = "".join(
        f"<tr><td>{html.escape(c)}</td><td class=num>{m['precision'][i]:.3f}</td><td class=num>{m['recall'][i]:.3f}</td>"
        f"<td class=num>{m['f1'][i]:.3f}</td><td class=num>{int(m['support'][i])}</td></tr>"
        for i, c in enumerate(classes))
    return ("<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
            f"{rows}</table>")


def _evaluation_section(run: RunDir, record: dict) -> list[str]:
    """One ``cnnlab eval`` record: its figures, averages, most-confused pairs and timing."""
    split, key = record["split"], evaluation_key(record)
    figures = "".join(_img((run.path / name).read_bytes(), f"{key} {kind}")
                      for kind, name in eval_figure_names(key).items() if (run.path / name).is_file())
    avg = record["averages"]
    rows = [("images", record["images"]), ("loss", record["loss"]), ("top-1 accuracy", record["top1"]),
            ("top-5 accuracy", record["top5"]), ("macro F1", avg["macro"]["f1"]),
            ("weighted F1", avg["weighted"]["f1"])]
    if record.get("binary"):
        rows += [("ROC-AUC", record["binary"]["roc_auc"]), ("average precision", record["binary"]["average_precision"])]
    timing = record.get("timing")
    if timing:
        rows += [("inference setting", f"{timing['setting']} on {timing['device']}"),
                 ("latency, batch 1, median (ms)", timing["latency"]["median_ms"]),
                 ("latency, batch 1, p95 (ms)", timing["latency"]["p95_ms"]),
                 (f"throughput, batch {timing['throughput']['batch']} (images/s)", timing["throughput"]["images_per_s"])]
    confused = "".join(f"<tr><td>{html.escape(p['true'])}</td><td>{html.escape(p['predicted'])}</td>"
                       f"<td class=num>{p['count']}</td></tr>" for p in record["most_confused"])
    model = "int8 model of the " if record.get("int8") else ""
    title = (f"Evaluation: {html.escape(split)} set, {model}{html.escape(record['checkpoint'])} checkpoint "
             f"(epoch {record['epoch']}), tta {html.escape(record['tta'])}")
    note = f"<p>{html.escape(record['note'])} ({html.escape(record['evaluated_at'])})</p>" if record.get("note") else ""
    return [f"<h2>{title}</h2>", note, _table(rows), figures,
            "<h3>Most confused</h3><table><tr><th>true</th><th>predicted</th><th>images</th></tr>"
            f"{confused}</table>" if confused else ""]


def grid_table(head: list[str], rows: list[list[Any]], table_id: str | None = None) -> str:
    """A table with a header row; numbers (cells that start with a digit, and "-" for none) right-aligned."""
    def td(value: Any) -> str:
        text = str(value)
        return f"<td class=num>{html.escape(text)}</td>" if text[:1].isdigit() or text == "-" \
            else f"<td>{html.escape(text)}</td>"

    body = "".join("<tr>" + "".join(td(v) for v in row) + "</tr>" for row in rows)
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return f"<table{f' id={table_id}' if table_id else ''}><tr>{header}</tr>{body}</table>"


def _explain_section(run: RunDir, record: dict) -> list[str]:
    """cnnlab explain: where the model looks (Grad-CAM, saliency), its first filters, its stages."""
    def peak(value) -> str:
        return "-" if value is None else f"({value[0]}, {value[1]})"

    rows = [[i["source"], i["true"] or "-", i["predicted"], f"{i['probability']:.4f}",
             peak(i["peaks"].get("gradcam_predicted")), peak(i["peaks"].get("saliency_predicted"))]
            for i in record["images"]]
    layer = record.get("target_layer")
    figures = "".join(_img((run.path / name).read_bytes(), name) for name in explain_figure_names(run.path))
    stages = ", ".join(f"{s['name']} {'x'.join(map(str, s['shape']))}" for s in record.get("stages", []))
    return [f"<h2>Explanations: {html.escape(record['checkpoint'])} checkpoint (epoch {record['epoch']})</h2>",
            f"<p>Grad-CAM at {html.escape(layer)}; " if layer else "<p>no Grad-CAM (no spatial map); ",
            "saliency |d score / d input|. Peaks are (row, col) of the maps for the predicted class.</p>",
            f"<p>{html.escape(record['note'])}</p>" if record.get("note") else "",
            grid_table(["image", "true", "predicted", "probability", "Grad-CAM peak", "saliency peak"], rows),
            figures, f"<p>stages: {html.escape(stages)}</p>" if stages else ""]


def _quantize_section(record: dict) -> list[str]:
    """cnnlab quantize: fp32, bf16 and int8 side by side."""
    def number(value, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    rows = [[r["precision"], f"{r['file_bytes']:,}", number(r["latency_ms"], ".3f"),
             number(r["eager_images_per_s"], ",.0f"), number(r["compiled_images_per_s"], ",.0f"),
             f"{r['val_top1']:.4f}", f"{r['test_top1']:.4f}"] for r in record["rows"]]
    ratios = [[name, f"{r['size']:.3f}", number(r["eager_throughput"], ".2f"), number(r["compiled_throughput"], ".2f"),
               f"{r['test_points']:+.2f}"] for name, r in record["ratios"].items()]
    kept = record["layers"]["fp32"]
    return [f"<h2>Quantization: {html.escape(record['checkpoint'])} checkpoint (epoch {record['epoch']})</h2>",
            f"<p>{html.escape(record['method'])}; {record['calibration_images']:,} training images calibrated; "
            f"{record['threads']} threads, {html.escape(record['cpu_capability'])}. "
            f"{html.escape(record['note'])}.</p>",
            grid_table(["precision", "file bytes", "latency b1 (ms)", "images/s eager", "images/s compiled",
                   "val top-1", "test top-1"], rows),
            grid_table(["against fp32", "size", "eager throughput", "compiled throughput", "test points"], ratios),
            f"<p class=warn>left in fp32: {html.escape(', '.join(kept))}</p>" if kept else ""]


def write_report(run_path: str | Path) -> Path:
    """Draw curves.png and confusion.png and write report.html from the records of ``run_path``."""
    run = RunDir.open(run_path)
    rows, summary, confusion = run.metrics(), run.summary(), run.confusion()
    best_epoch = summary.best.epoch if summary and summary.best else None
    status = summary.status if summary else "incomplete"
    sections = [f"<h1>cnnlab run {html.escape(run.path.name)}</h1>",
                f"<p><span class=status>{html.escape(status)}</span></p>",
                "<h2>Key figures</h2>", _table(_key_figures(summary))]
    if rows:
        reading = read_curves(rows)
        png = curves_png(rows, best_epoch, reading=reading)
        run.write_file("curves.png", png)
        flag = "<p class=warn>" if reading.overfitting else "<p>"
        sections += ["<h2>Learning curves</h2>", _img(png, "loss and accuracy per epoch"),
                     f"{flag}{html.escape(reading.note)}</p>"]
    if confusion is not None:
        matrix = np.array(confusion.matrix)
        names = confusion.classes or [str(i) for i in range(len(matrix))]
        png = confusion_png(matrix, names, f"{confusion.split} set")
        run.write_file("confusion.png", png)
        sections += [f"<h2>Confusion matrix ({html.escape(confusion.split)} set)</h2>",
                     f"<p>weights: {html.escape(confusion.checkpoint)}</p>", _img(png, "confusion matrix"),
                     _class_table(matrix, names)]
    for record in run.evaluations().values():
        sections += _evaluation_section(run, record)
    if (quantized := run.record("quantize.json")) is not None:
        sections += _quantize_section(quantized)
    if (explained := run.record("explain.json")) is not None:
        sections += _explain_section(run, explained)
    if rows:
        table = [dataclasses.asdict(r) for r in rows]
        keys = [k for k in table[0] if table[0][k] is not None]
        head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
        body = "".join("<tr>" + "".join(f"<td class=num>{_fmt(r.get(k), k)}</td>" for k in keys) + "</tr>"
                       for r in table)
        sections += ["<h2>Metrics per epoch</h2>", f"<div class=wide><table><tr>{head}</tr>{body}</table></div>"]
    sections += ["<h2>Config</h2>", f"<pre>{html.escape(run.config_text())}</pre>"]
    if summary is not None:
        sections += ["<h2>Environment</h2>", f"<pre>{html.escape(json.dumps(summary.environment, indent=2))}</pre>"]
    page = (f"<!doctype html><html><head><meta charset=utf-8><title>cnnlab {html.escape(run.path.name)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>\n")
    return run.write_file("report.html", page)
