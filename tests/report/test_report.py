"""report.html: self-contained, and rendered by a real browser (headless Chromium)."""

import json
import re
import shutil

import numpy as np
import pytest

from cnnlab.engine.fit import fit
from cnnlab.report import write_report
from cnnlab.engine.progress import Progress
from cnnlab.analysis.classification import per_class_metrics
from tests.conftest import need
from tests.report.chromium import probe_page, render

PROBE = probe_page("report.html", """{
  title: doc.title, headings: [...doc.querySelectorAll('h2')].map(h => h.textContent),
  images: imgs.length, decoded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
  widths: imgs.map(i => i.naturalWidth)}""")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from cnnlab.config import load_recipe

    out = tmp_path_factory.mktemp("runs")
    config = load_recipe(None, [f"output_dir={out}", "data.name=synthetic", "data.val_size=100",
                                "data.options={shape: [1, 16, 16], train_size: 600, test_size: 200}",
                                "optim.lr=0.05", "optim.momentum=0.9", "train.epochs=2", "train.precision=fp32"])
    run_dir = fit(config, progress=Progress(quiet=True)).run_dir
    write_report(run_dir)  # cnnlab train does this after fit; the report reads only the run folder
    return run_dir


def test_report_is_self_contained(finished_run):
    page = open(f"{finished_run}/report.html").read()
    sources = re.findall(r'src="([^"]+)"', page)
    assert len(sources) == 2 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "href=" not in page and "<script" not in page
    summary = json.load(open(f"{finished_run}/summary.json"))
    assert f"{summary['test']['acc']:.4f}" in page  # the test accuracy, as evaluated once
    assert "Confusion matrix (test set)" in page and "precision" in page


def test_per_class_metrics_match_scikit_learn():
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    ours = per_class_metrics(confusion_matrix(y, p))
    precision, recall, f1, support = precision_recall_fscore_support(y, p)
    np.testing.assert_allclose(ours["precision"], precision)
    np.testing.assert_allclose(ours["recall"], recall)
    np.testing.assert_allclose(ours["f1"], f1)
    np.testing.assert_array_equal(ours["support"], support)


def test_chromium_renders_every_figure(finished_run):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    need(chromium is not None, "chromium is not installed (make test-deps installs it)")
    seen, _ = render(finished_run, chromium, PROBE)
    assert seen["title"].startswith("cnnlab ")
    assert seen["images"] == 2 and seen["decoded"] == 2 and min(seen["widths"]) > 300
    assert "Learning curves" in seen["headings"] and "Confusion matrix (test set)" in seen["headings"]
