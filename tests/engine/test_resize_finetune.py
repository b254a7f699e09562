"""Pretrained torchvision nets on small gray images: data.image_size and data.channels make them fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

from cnnlab.analysis.predict import Predictor
from cnnlab.config import load_recipe
from cnnlab.engine.fit import fit
from cnnlab.engine.progress import Progress
from cnnlab.models import build_model
from cnnlab.run.restore import restore_model

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def test_tv_resnet18_fine_tunes_on_28px_gray_images_resized_to_64px_rgb(tmp_path):
    weights = tmp_path / "resnet18.pth"  # a local weights file, as a user without a network would have
    torch.manual_seed(0)
    torch.save(build_model("tv_resnet18").state_dict(), weights)  # torchvision's own resnet18, 1000 classes
    config = load_recipe(None, [
        f"output_dir={tmp_path / 'runs'}", "data.name=synthetic",
        "data.options={shape: [1, 28, 28], train_size: 240, test_size: 40}", "data.val_size=40",
        "data.image_size=[64, 64]", "data.channels=3", "data.normalize=imagenet", "data.batch_size=40",
        "model.name=tv_resnet18", f"model.options={{weights: {weights}}}", "optim.name=sgd", "optim.lr=0.01",
        "train.epochs=1", "train.precision=fp32"])
    summary = fit(config, progress=Progress(quiet=True))
    assert summary.status == "completed"
    run = Path(summary.run_dir)
    record = json.loads((run / "data.json").read_text())
    assert record["image_shape"] == [3, 64, 64] and record["normalization"]["scheme"] == "imagenet"

    # a 28x28 gray picture goes through the run's own preprocessing, as torchvision would prepare it
    picture = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    got = Predictor.from_run(run)([picture])[0].probs
    prepare = T.Compose([T.Lambda(lambda im: im.convert("RGB")), T.Resize(64), T.CenterCrop(64), T.ToTensor(),
                         T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    with torch.no_grad():
        logits = restore_model(run)(prepare(Image.fromarray(picture))[None])
    np.testing.assert_allclose(got, torch.softmax(logits, dim=1)[0].numpy(), atol=1e-5)
