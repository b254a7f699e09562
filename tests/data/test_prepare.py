"""data.image_size and data.channels on any dataset, checked against torchvision's transforms on PIL images."""

from __future__ import annotations

import numpy as np
import pytest
import torchvision.transforms as T
from PIL import Image

from cnnlab.config import load_recipe
from cnnlab.data.images import convert_channels, resize_images
from cnnlab.data.prepare import load_splits
from cnnlab.errors import CnnlabError

SYNTHETIC = ["data.name=synthetic", "data.options={shape: [1, 28, 28], train_size: 60, test_size: 20}",
             "data.val_size=10"]


def data_config(*overrides):
    return load_recipe(None, [*SYNTHETIC, *overrides]).data


def pil(image: np.ndarray) -> Image.Image:
    """uint8 (C, H, W) as a PIL image."""
    return Image.fromarray(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0))


def test_image_size_and_channels_resize_every_split_as_torchvision_resize_and_center_crop():
    plain = load_splits(data_config())
    resized = load_splits(data_config("data.image_size=[64,64]", "data.channels=3"))
    reference = T.Compose([T.Lambda(lambda im: im.convert("RGB")), T.Resize(64), T.CenterCrop(64)])
    for part in ("train", "val", "test"):
        before, after = getattr(plain, f"{part}_images"), getattr(resized, f"{part}_images")
        assert after.shape == (len(before), 3, 64, 64) and after.dtype == np.uint8
        expected = np.stack([np.asarray(reference(pil(image))).transpose(2, 0, 1) for image in before])
        np.testing.assert_array_equal(after, expected)
        np.testing.assert_array_equal(getattr(plain, f"{part}_labels"), getattr(resized, f"{part}_labels"))


def test_stretch_is_torchvision_resize_to_both_sides():
    images = np.random.default_rng(0).integers(0, 256, (4, 3, 20, 36), dtype=np.uint8)
    out = resize_images(images, (24, 30), "stretch")
    expected = np.stack([np.asarray(T.Resize((24, 30))(pil(image))).transpose(2, 0, 1) for image in images])
    np.testing.assert_array_equal(out, expected)
    # resize keeps the aspect: shorter side to 24, then the centre 24x30 (torchvision's Resize + CenterCrop)
    kept = resize_images(images, (24, 24), "resize")
    expected = np.stack([np.asarray(T.CenterCrop(24)(T.Resize(24)(pil(image)))).transpose(2, 0, 1) for image in images])
    np.testing.assert_array_equal(kept, expected)


def test_rgb_to_gray_is_pillows_luma_and_gray_to_rgb_repeats():
    images = np.random.default_rng(1).integers(0, 256, (6, 3, 9, 7), dtype=np.uint8)
    gray = convert_channels(images, 1)
    np.testing.assert_array_equal(gray[:, 0], np.stack([np.asarray(pil(image).convert("L")) for image in images]))
    rgb = convert_channels(gray, 3)
    np.testing.assert_array_equal(rgb, np.stack([np.asarray(pil(g).convert("RGB")).transpose(2, 0, 1) for g in gray]))


def test_skip_bad_files_is_refused_where_no_image_file_is_read():
    with pytest.raises(CnnlabError, match=r"^data.skip_bad_files is for image folders; dataset 'synthetic' reads no "
                                          r"image files$"):
        load_splits(data_config("data.skip_bad_files=true"))
