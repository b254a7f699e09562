"""cnnlab explain: maps that peak where the model looks, checked against autograd, CAM and torchvision."""

import hashlib
import json

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.analysis.explain import explain_batch, filter_grid, peak
from cnnlab.cli.main import main
from cnnlab.data.normalize import ChannelStats
from cnnlab.models import build_model
from cnnlab.report.explain import explain_figure_names
from tests.cli.test_cli import heavy_imports
from tests.conftest import synthetic_run

REGION = (slice(0, 8), slice(8, 16))  # rows 0-7, columns 8-15 of 16x16: the top-right quadrant
CLASSES = 4


class RegionGate(nn.Module):
    """Zeroes the input outside REGION: nothing else of the image can reach the score."""

    def __init__(self) -> None:
        super().__init__()
        mask = torch.zeros(1, 1, 16, 16)
        mask[..., REGION[0], REGION[1]] = 1
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask


def quadrant_images(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, 1, 16, 16) noise with, in REGION only, the pattern of the image's class; labels (n,)."""
    patterns = np.zeros((CLASSES, 8, 8))
    patterns[0, 1:7, 3:5] = 1  # a vertical bar
    patterns[1, 3:5, 1:7] = 1  # a horizontal bar
    patterns[2, np.arange(1, 7), np.arange(1, 7)] = 1  # a diagonal
    patterns[3, 2:6, 2:6], patterns[3, 3:5, 3:5] = 1, 0  # a ring
    labels = rng.integers(0, CLASSES, n)
    images = 0.5 * rng.random((n, 1, 16, 16))
    images[:, 0, REGION[0], REGION[1]] += 0.5 * patterns[labels]
    return (255 * images).round().astype(np.uint8), labels


STATS = ChannelStats((0.25,), (0.15,))  # about the mean and std of quadrant_images' pixels


@pytest.fixture(scope="module")
def region_model():
    """A CAM-style net (convs, global average pool, linear) behind RegionGate, trained a second or two
    on quadrant_images; with held-out images and their labels."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = nn.Sequential(RegionGate(), nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.ReLU(),
                          nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(16, CLASSES, bias=False))
    pixels, labels = quadrant_images(256, rng)
    x, y = STATS.normalize(torch.as_tensor(pixels)), torch.as_tensor(labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(80):  # 98-100% train accuracy for seeds 0-7
        batch = torch.randint(0, len(y), (64,))
        loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        assert (model(x).argmax(dim=1) == y).float().mean() > 0.9  # it has learned to read the quadrant
    test_pixels, test_labels = quadrant_images(12, rng)
    return model.eval(), test_pixels, test_labels


def test_gradcam_and_saliency_peak_in_the_only_region_that_matters(region_model):
    model, pixels, labels = region_model
    maps = explain_batch(model, pixels, STATS, num_outputs=CLASSES, labels=labels)
    assert maps.target_layer == "4"  # the last ReLU: the last spatial map before the pooling
    assert set(maps.gradcam) == set(maps.saliency) == {"predicted", "true"}
    for method in (maps.gradcam, maps.saliency):
        for heat in (*method["predicted"], *method["true"]):  # (16, 16) each
            row, col = peak(heat)
            assert 0 <= row < 8 and 8 <= col < 16, (row, col)


def test_gradcam_is_cam_and_saliency_is_the_input_gradient(region_model):
    """With global average pooling and a linear head, Grad-CAM is CAM: ReLU(sum_k w_ck A_k) scaled to
    [0, 1] (Selvaraju et al. 2017, section 3.1); saliency is |d logit / d x|, max over channels."""
    model, pixels, labels = region_model
    maps = explain_batch(model, pixels, STATS, num_outputs=CLASSES, labels=labels)
    x = STATS.normalize(torch.as_tensor(pixels))
    with torch.no_grad():
        A = model[:5](x)  # (N, 16, 16, 16)
    for target, classes in (("predicted", maps.predicted), ("true", labels)):
        w = model[7].weight.detach()[torch.as_tensor(classes)]  # (N, 16)
        cam = torch.relu(torch.einsum("nk,nkhw->nhw", w, A)).numpy()
        cam -= cam.min(axis=(1, 2), keepdims=True)
        cam /= cam.max(axis=(1, 2), keepdims=True)
        np.testing.assert_allclose(maps.gradcam[target], cam, atol=1e-5)
        xg = x.clone().requires_grad_(True)
        score = model(xg)[torch.arange(len(classes)), torch.as_tensor(classes)].sum()
        (grad,) = torch.autograd.grad(score, xg)
        np.testing.assert_allclose(maps.saliency[target], grad.abs().amax(dim=1).numpy(), rtol=1e-5, atol=1e-8)
    with torch.no_grad():
        np.testing.assert_allclose(maps.probs, torch.softmax(model(x), dim=1).numpy(), rtol=1e-5)


def test_single_logit_model_scores_the_other_class_minus_z():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 1))
    pixels = np.random.default_rng(1).integers(0, 256, (4, 3, 12, 12), dtype=np.uint8)
    stats = ChannelStats((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    x = stats.normalize(torch.as_tensor(pixels)).requires_grad_(True)
    z = model(x)[:, 0]  # (N,)
    (grad,) = torch.autograd.grad(z.sum(), x)
    other = (z <= 0).long().numpy()  # every image's true class is the one it is not predicted
    maps = explain_batch(model, pixels, stats, num_outputs=1, labels=other)
    p = torch.sigmoid(z).detach().numpy()
    np.testing.assert_allclose(maps.probs, np.stack([1 - p, p], axis=1), rtol=1e-5)
    assert np.array_equal(maps.predicted, 1 - other)
    # |d(-z)/dx| = |dz/dx|: the same saliency for either class
    for target in ("predicted", "true"):
        np.testing.assert_allclose(maps.saliency[target], grad.abs().amax(dim=1).numpy(), rtol=1e-5, atol=1e-8)
    # Grad-CAM of -z is the ReLU of the opposite sum: where one class's map is positive the other's is zero
    assert all(peak(m) is not None for m in maps.gradcam["predicted"])
    assert (maps.gradcam["predicted"] * maps.gradcam["true"] < 1e-6).all()


@pytest.mark.parametrize("shape, columns, per_row", [((16, 3, 5, 5), None, 4), ((6, 1, 3, 3), 4, 4),
                                                     ((7, 3, 2, 2), 3, 3)])
def test_filter_grid_is_torchvision_make_grid(shape, columns, per_row):
    from torchvision.utils import make_grid

    weights = torch.randn(shape)
    weights[0] = 0.3  # a flat filter: both give zeros
    grid = filter_grid(weights.numpy(), columns=columns)
    expected = make_grid(weights, nrow=per_row, padding=1, normalize=True,  # nrow: images in a row
                         scale_each=True).permute(1, 2, 0).numpy()  # (gh, gw, 3)
    assert grid.shape[:2] == expected.shape[:2] and grid.shape[2] == shape[1]
    np.testing.assert_allclose(grid, expected[:, :, :shape[1]], atol=1e-6)


@pytest.mark.parametrize("name", ["resnet20", "simple_nn"])
def test_stages_and_filters_are_the_models_own(name):
    torch.manual_seed(0)
    model = build_model(name, in_chans=3, num_classes=10, input_size=(32, 32)).eval()
    pixels = np.random.default_rng(0).integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
    stats = ChannelStats((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    maps = explain_batch(model, pixels, stats, num_outputs=10)
    x = stats.normalize(torch.as_tensor(pixels[:1]))
    with torch.no_grad():  # each stage by running the model's own modules, in its forward's order
        if name == "resnet20":
            a0 = model.act1(model.bn1(model.conv1(x)))
            expected = {"layer1": model.layer1(a0)}
            expected["layer2"] = model.layer2(expected["layer1"])
            expected["layer3"] = model.layer3(expected["layer2"])
            conv, layer = model.conv1, "layer3"
        else:
            f = model.features
            expected = {"features.act1": f[:3](x), "features.pool1": f[:4](x), "features.act2": f[:7](x),
                        "features": f(x)}
            conv, layer = f.conv1, "features"
    assert [name for name, _ in maps.stages] == list(expected)
    for (stage, activation), want in zip(maps.stages, expected.values()):
        assert activation.shape == tuple(want.shape[1:]), stage
        np.testing.assert_allclose(activation, want[0].numpy(), rtol=1e-4, atol=1e-5)
    assert maps.target_layer == layer and maps.target_shape == tuple(expected[layer].shape[1:])
    assert np.array_equal(maps.filters, conv.weight.detach().numpy())
    assert maps.labels is None and set(maps.gradcam) == {"predicted"} and maps.gradcam["predicted"].shape == (2, 32, 32)


def test_mlp_gets_saliency_only():
    model = build_model("mlp", in_chans=1, num_classes=10, input_size=(16, 16))
    pixels = np.random.default_rng(0).integers(0, 256, (2, 1, 16, 16), dtype=np.uint8)
    maps = explain_batch(model, pixels, ChannelStats.identity(1), num_outputs=10, labels=np.array([1, 2]))
    assert maps.target_layer is None and maps.gradcam == {} and maps.stages == [] and maps.filters is None
    assert maps.saliency["true"].shape == (2, 16, 16)


def test_peak_is_row_then_column_and_none_on_a_flat_map():
    heat = np.zeros((5, 7))
    heat[1, 6] = 2.0
    assert peak(heat) == [1, 6]
    assert peak(np.zeros((5, 7))) is None


# --- the command, on a trained run ----------------------------------------------------------------


@pytest.fixture(scope="module")
def conv_run(tmp_path_factory):
    return synthetic_run(tmp_path_factory.mktemp("runs"))  # simple_nn, 1x16x16


def folder_state(run_dir) -> dict:
    return {str(p.relative_to(run_dir)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(run_dir.rglob("*")) if p.is_file()}


def test_explain_command_writes_json_and_figures(conv_run, capsys):
    from cnnlab.analysis.predict import Predictor
    from cnnlab.run.restore import restore_splits

    assert main(["explain", str(conv_run), "--images", "3"]) == 0
    out = capsys.readouterr().out
    assert "3 images, best checkpoint" in out and "Grad-CAM at features (16x2x2 map)" in out
    assert "stages: features.act1 8x12x12, features.pool1 8x6x6, features.act2 16x4x4, features 16x2x2" in out
    record = json.loads((conv_run / "explain.json").read_text())
    splits, _ = restore_splits(conv_run)
    assert [i["source"] for i in record["images"]] == ["test[0]", "test[1]", "test[2]"]
    assert [i["true"] for i in record["images"]] == [record["classes"][k] for k in splits.test_labels[:3]]
    predictions = Predictor.from_run(conv_run)(list(splits.test_images[:3]))  # the run's own preprocessing
    for image, prediction in zip(record["images"], predictions):
        (name, probability), = prediction.top(1)
        assert image["predicted"] == name and image["probability"] == pytest.approx(probability, rel=1e-5)
        assert set(image["peaks"]) == {"gradcam_predicted", "gradcam_true", "saliency_predicted", "saliency_true"}
        assert f"{image['source']}  {image['true']}" in out
    assert record["first_conv"] == {"name": "features.conv1", "shape": [8, 1, 5, 5]}
    assert record["figures"] == explain_figure_names(conv_run) == \
        ["explain-gradcam.png", "explain-filters.png", "explain-activations.png"]
    for name in record["figures"]:
        data = (conv_run / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 400_000  # embedded in report.html


def test_image_files_have_no_true_class(conv_run, tmp_path, capsys):
    from PIL import Image

    from cnnlab.analysis.predict import Predictor

    rng = np.random.default_rng(3)
    files = [tmp_path / "wide.png", tmp_path / "small.jpg"]
    Image.fromarray(rng.integers(0, 256, (30, 48, 3), dtype=np.uint8)).save(files[0])
    Image.fromarray(rng.integers(0, 256, (10, 10), dtype=np.uint8)).save(files[1])
    assert main(["explain", str(conv_run), *map(str, files)]) == 0
    record = json.loads((conv_run / "explain.json").read_text())
    assert [i["source"] for i in record["images"]] == [str(f) for f in files]
    assert all(i["true"] is None and set(i["peaks"]) == {"gradcam_predicted", "saliency_predicted"}
               for i in record["images"])
    predictions = Predictor.from_run(conv_run)(files)
    assert [i["predicted"] for i in record["images"]] == [p.top(1)[0][0] for p in predictions]


def test_mlp_run_explains_with_saliency_and_says_why(tmp_path, capsys):
    run_dir = synthetic_run(tmp_path, model="mlp", epochs=1)
    assert main(["explain", str(run_dir), "--images", "2"]) == 0
    record = json.loads((run_dir / "explain.json").read_text())
    assert record["target_layer"] is None and record["stages"] == [] and record["first_conv"] is None
    assert "mlp has no layer with a spatial map" in record["note"] and "saliency only" in capsys.readouterr().out
    assert record["figures"] == explain_figure_names(run_dir) == ["explain-gradcam.png"]


@pytest.mark.parametrize("words, message", [
    (["--images", "2", "IMAGE"], "give either --images N or IMAGE files, not both"),
    (["--images", "0"], "--images must be 1 to 16, got 0"),
    (["NOT_AN_IMAGE"], "is not an image that Pillow can read"),
    (["IMAGE", "missing.png"], "missing.png: no such image file"),
    (["--checkpoint", "middle"], "unknown checkpoint 'middle' (valid: best, last)"),
    (["--layer", "features.cnv1"], "no layer 'features.cnv1' in the model; did you mean 'features.conv1'?"),
    (["--layer", "classifier.fc1"], "layer 'classifier.fc1' gives no spatial map"),
])
def test_bad_input_is_one_line_and_leaves_the_run_folder(conv_run, tmp_path, capsys, words, message):
    from PIL import Image

    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "image.png")
    (tmp_path / "notes.png").write_text("not a picture")
    files = {"IMAGE": str(tmp_path / "image.png"), "NOT_AN_IMAGE": str(tmp_path / "notes.png"),
             "missing.png": str(tmp_path / "missing.png")}
    before = folder_state(conv_run)
    assert main(["explain", str(conv_run), *(files.get(w, w) for w in words)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cnnlab: error:") and message in err and "\n" not in err
    assert folder_state(conv_run) == before


def test_not_a_run_folder_is_one_line(tmp_path, capsys):
    assert main(["explain", str(tmp_path)]) == 2
    assert "is not a cnnlab run directory" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_explain_help_imports_no_torch():
    assert heavy_imports(["explain", "--help"]) == ("0", [])
