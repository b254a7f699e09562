"""report.html with the sections of cnnlab eval, quantize and explain, rendered by headless
Chromium: no console errors, every image decodes, and the numbers on the page are those of the
JSON files."""

import json
from pathlib import Path
import shutil

import pytest

from cnnlab.analysis.evaluation import evaluate_run, write_evaluation
from cnnlab.analysis.explain import explain_run, write_explanation
from cnnlab.analysis.quantize_table import quantize_run, write_quantized
from cnnlab.engine.fit import fit
from cnnlab.engine.progress import Progress
from cnnlab.report import write_report
from cnnlab.report.evaluation import write_eval_figures
from cnnlab.report.explain import write_explain_figures
from tests.conftest import need, synthetic_run
from tests.report.chromium import probe_page, render

# Reads every key/value row of every table in the report, and counts and decodes the images.
PROBE = probe_page("report.html", """{
  headings: [...doc.querySelectorAll('h2')].map(h => h.textContent), images: imgs.length,
  rows: [...doc.querySelectorAll('tr')].map(r => [...r.children].map(c => c.textContent)),
  decoded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
  cells: [...doc.querySelectorAll('tr')].filter(r => r.children.length === 2 && r.children[0].tagName === 'TH')
           .map(r => [r.children[0].textContent, r.children[1].textContent]),
  warn: [...doc.querySelectorAll('.warn')].map(p => p.textContent)}""")


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory):
    run_dir = synthetic_run(tmp_path_factory.mktemp('runs'), train_size=400, epochs=3)
    evaluation, gallery = evaluate_run(run_dir)
    write_eval_figures(run_dir, evaluation.to_dict(), gallery)
    write_evaluation(run_dir, evaluation)
    write_quantized(run_dir, *quantize_run(run_dir, calibration=1, compile=False))
    explanation, maps = explain_run(run_dir, count=3)
    explanation.figures = [f.name for f in write_explain_figures(run_dir, explanation.to_dict(), maps)]
    write_explanation(run_dir, explanation)
    write_report(run_dir)
    return run_dir


def test_the_page_shows_the_evaluation_as_recorded(evaluated_run):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    need(chromium is not None, "chromium is not installed (make test-deps installs it)")
    seen, log = render(evaluated_run, chromium, PROBE)
    record = json.loads((evaluated_run / "eval-test.json").read_text())
    summary = json.loads((evaluated_run / "summary.json").read_text())
    console = [line for line in log.splitlines() if "CONSOLE" in line]
    assert not console, console
    # curves, confusion, the evaluation's confusion and top losses, explain's maps, filters and activations
    explained = json.loads((evaluated_run / "explain.json").read_text())
    assert len(explained["figures"]) == 3
    assert seen["images"] == 7 and seen["decoded"] == 7
    assert any(h.startswith("Evaluation: test set, best checkpoint") for h in seen["headings"])
    cells = seen["cells"]
    assert ["top-1 accuracy", f"{record['top1']:.4f}"] in cells
    assert ["loss", f"{record['loss']:.4f}"] in cells
    assert ["macro F1", f"{record['averages']['macro']['f1']:.4f}"] in cells
    assert ["latency, batch 1, median (ms)", f"{record['timing']['latency']['median_ms']:.4f}"] in cells
    assert ["test accuracy (evaluated once)", f"{summary['test']['acc']:.4f}"] in cells
    throughput = record["timing"]["throughput"]
    assert [f"throughput, batch {throughput['batch']} (images/s)", f"{throughput['images_per_s']:,.0f}"] in cells
    quantized = json.loads((evaluated_run / "quantize.json").read_text())
    assert any(h.startswith("Quantization: best checkpoint") for h in seen["headings"])
    rows = seen["rows"]
    for row in quantized["rows"]:
        assert [row["precision"], f"{row['file_bytes']:,}", f"{row['latency_ms']:.3f}",
                f"{row['eager_images_per_s']:,.0f}", "-", f"{row['val_top1']:.4f}", f"{row['test_top1']:.4f}"] in rows
    int8 = quantized["ratios"]["int8"]
    assert ["int8", f"{int8['size']:.3f}", f"{int8['eager_throughput']:.2f}", "-", f"{int8['test_points']:+.2f}"] in rows
    assert any(h.startswith("Explanations: best checkpoint") for h in seen["headings"])
    def peak(point):  # None: the map is zero everywhere (Grad-CAM's ReLU of a weakly trained net)
        return "-" if point is None else f"({point[0]}, {point[1]})"

    for image in explained["images"]:
        assert [image["source"], image["true"], image["predicted"], f"{image['probability']:.4f}",
                peak(image["peaks"]["gradcam_predicted"]), peak(image["peaks"]["saliency_predicted"])] in rows
