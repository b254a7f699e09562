"""Predictor and cnnlab predict: image files through the run's own preprocessing."""

import json
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.analysis.predict import Predictor
from cnnlab.data.images import resize_center
from cnnlab.cli.main import main
from cnnlab.engine.fit import fit
from cnnlab.engine.progress import Progress
from cnnlab.run.restore import restore_model, restore_splits
from tests.conftest import synthetic_run


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory):
    """lenet5 (convertible to a fully convolutional net) on synthetic 1x32x32 images, one epoch."""
    return synthetic_run(tmp_path_factory.mktemp('runs'), shape=(1, 32, 32), train_size=300, test_size=40,
                         noise=0.3, val_size=50, model="lenet5", epochs=1)

def test_png_files_give_the_models_own_probabilities(lenet_run, tmp_path):
    splits, stats = restore_splits(lenet_run)
    images = splits.test_images[:6]  # (6, 1, 32, 32) uint8
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(image[0]).save(paths[-1])
    model = restore_model(lenet_run)
    with torch.inference_mode():
        expected = torch.softmax(model(stats.normalize(torch.as_tensor(images))), dim=1).numpy()
    predictions = Predictor.from_run(lenet_run)(paths)
    np.testing.assert_allclose(np.stack([p.probs for p in predictions]), expected, rtol=1e-5, atol=1e-6)
    top = predictions[0].top(3)
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1]
    assert top[0][0] == splits.classes[int(expected[0].argmax())]


@pytest.mark.parametrize("size", [(50, 40), (40, 50), (33, 33), (20, 90)])
def test_resize_equals_torchvision_resize_and_center_crop(size):
    from torchvision.transforms import v2

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    expected = v2.CenterCrop(32)(v2.Resize(32)(Image.fromarray(pixels)))
    np.testing.assert_array_equal(resize_center(pixels, (32, 32)), np.asarray(expected))


def test_image_modes_are_converted(lenet_run, tmp_path):
    predictor = Predictor.from_run(lenet_run)
    gray = np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) % 256
    # 16-bit: values v * 257 come back as v (scaled by the image's maximum, not clipped)
    Image.fromarray((gray * 257).astype(np.uint16)).save(tmp_path / "16bit.png")
    np.testing.assert_array_equal(predictor.pixels(tmp_path / "16bit.png")[0], gray)
    # palette and RGBA: as Pillow converts them to grayscale (transparent pixels become black)
    rgb = np.stack([gray, 255 - gray, gray // 2], axis=2).astype(np.uint8)
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    expected = np.asarray(Image.open(tmp_path / "palette.png").convert("L"))
    np.testing.assert_array_equal(predictor.pixels(tmp_path / "palette.png")[0], expected)
    rgba = np.dstack([rgb, np.full((32, 32), 255, np.uint8)])
    rgba[:4, :4, 3] = 0
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    pixels = predictor.pixels(tmp_path / "rgba.png")[0]
    assert (pixels[:4, :4] == 0).all()
    np.testing.assert_array_equal(pixels[4:], np.asarray(Image.fromarray(rgb).convert("L"))[4:])
    # a CMYK JPEG with EXIF orientation 6 (stored sideways): a 32x64 image is read 64x32, then resized
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((32, 64, 3), np.uint8)).convert("CMYK").save(tmp_path / "rotated.jpg", exif=exif)
    assert predictor.pixels(tmp_path / "rotated.jpg").shape == (1, 32, 32)
    from cnnlab.data.images import as_pixels

    assert as_pixels(str(tmp_path / "rotated.jpg"), 1).shape == (64, 32, 1)


def test_fully_conv_gives_a_score_map_on_a_larger_image(lenet_run, tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "big.png")
    (prediction,) = Predictor.from_run(lenet_run, fully_conv=True)([tmp_path / "big.png"])
    K, h, w = prediction.probs.shape
    assert K == 10 and (h, w) == (9, 9)  # lenet5: 32x32 -> 1x1 map; 64x64 -> (64-32)/4+1 = 9
    np.testing.assert_allclose(prediction.probs.sum(axis=0), 1, rtol=1e-5)
    assert main(["predict", str(lenet_run), str(tmp_path / "big.png"), "--fully-conv"]) == 0


def test_predict_command_prints_top_k_and_imports_no_torchvision(lenet_run, tmp_path):
    splits, _ = restore_splits(lenet_run)
    Image.fromarray(splits.test_images[0, 0]).save(tmp_path / "a.png")
    code = ("import sys; from cnnlab.cli.main import main; "
            f"code = main(['predict', {str(lenet_run)!r}, {str(tmp_path / 'a.png')!r}, '--top-k', '3']); "
            "print('heavy:', [m for m in ('torchvision', 'matplotlib', 'sklearn') if m in sys.modules]); "
            "sys.exit(code)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0].endswith("a.png") and len([line for line in lines if line.endswith("%")]) == 3
    assert "1 image in" in out and "heavy: []" in out
    out = subprocess.run([sys.executable, "-m", "cnnlab", "predict", str(lenet_run), str(tmp_path / "a.png"),
                          "--json", "--top-k", "2"], capture_output=True, text=True, check=True).stdout
    answer = json.loads(out)["predictions"][0]
    assert len(answer["top"]) == 2 and answer["image"].endswith("a.png")


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_text("not an image"), "is not an image that Pillow can read"),
    (lambda p: p.write_bytes(b""), "is not an image that Pillow can read"),
    (lambda p: None, "no such image file"),
])
def test_a_file_that_is_not_an_image_is_one_line(lenet_run, tmp_path, capsys, make, message):
    path = tmp_path / "bad.png"
    make(path)
    assert main(["predict", str(lenet_run), str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cnnlab: error:") and message in err and "\n" not in err
