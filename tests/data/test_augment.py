"""Batched augmentations against torchvision's per-image transforms."""

import pytest
import torch
import torchvision.transforms.functional as TF

from cnnlab.data.augment import build_augmentations, flip_lr, random_crop
from cnnlab.errors import CnnlabError


def images(*shape):
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(9))


def test_random_crop_equals_torchvision_pad_then_crop():
    x = images(16, 3, 10, 12)
    gen = torch.Generator().manual_seed(0)
    out = random_crop(x, gen, padding=3)
    # Replay the offsets the op drew, then do the same with torchvision image by image.
    replay = torch.Generator().manual_seed(0)
    dy = torch.randint(0, 7, (16,), generator=replay)
    dx = torch.randint(0, 7, (16,), generator=replay)
    for i in range(16):
        ref = TF.crop(TF.pad(x[i], [3]), int(dy[i]), int(dx[i]), 10, 12)
        torch.testing.assert_close(out[i], ref, rtol=0, atol=0)


def test_random_crop_pads_with_the_fill_value_as_torchvision():
    x = images(16, 2, 5, 7)
    out = random_crop(x, torch.Generator().manual_seed(3), padding=2, fill=77)
    replay = torch.Generator().manual_seed(3)
    dy, dx = (torch.randint(0, 5, (16,), generator=replay) for _ in range(2))
    for i in range(16):
        ref = TF.crop(TF.pad(x[i], [2], fill=77), int(dy[i]), int(dx[i]), 5, 7)
        torch.testing.assert_close(out[i], ref, rtol=0, atol=0)
    assert bool(((dy != 2) | (dx != 2)).any())  # some crop shows the border, so fill is really compared


def test_random_crop_draws_every_offset():
    x = torch.zeros(2000, 1, 5, 5, dtype=torch.uint8)
    x[:, :, 2, 2] = 255  # a single bright pixel: its position after the crop reveals the offset
    out = random_crop(x, torch.Generator().manual_seed(1), padding=2)
    positions = {tuple(torch.nonzero(img[0])[0].tolist()) for img in out if img.sum() == 255}
    assert positions == {(r, c) for r in range(5) for c in range(5)}


def test_flip_matches_torchvision_and_flips_about_half():
    x = images(1000, 2, 4, 6)
    out = flip_lr(x, torch.Generator().manual_seed(0))
    flipped = torch.tensor([torch.equal(o, TF.hflip(i)) for o, i in zip(out, x)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert bool((flipped | kept).all())
    assert 430 < int(flipped.sum()) < 570  # Binomial(1000, 0.5): 4.4 sigma either side


@pytest.mark.parametrize("p", [0.2, 0.9])
def test_flip_probability_is_p(p):
    x = images(2000, 1, 2, 3)
    out = flip_lr(x, torch.Generator().manual_seed(1), p=p)
    flipped = sum(not torch.equal(o, i) for o, i in zip(out, x))
    assert abs(flipped - 2000 * p) < 5 * (2000 * p * (1 - p)) ** 0.5  # Binomial(2000, p): 5 sigma


def test_same_seed_same_batch():
    x = images(8, 3, 8, 8)
    ops = build_augmentations([{"name": "random_crop", "padding": 2}, {"name": "flip_lr"}])

    def run(seed):
        gen = torch.Generator().manual_seed(seed)
        y = x
        for op in ops:
            y = op(y, gen)
        return y

    assert torch.equal(run(5), run(5)) and not torch.equal(run(5), run(6))


def test_bad_specs_list_the_valid_names():
    with pytest.raises(CnnlabError, match="unknown augmentation 'flip'.*valid: flip_lr, random_crop"):
        build_augmentations([{"name": "flip"}])
    with pytest.raises(CnnlabError, match="has no option 'pad'; did you mean 'padding'"):
        build_augmentations([{"name": "random_crop", "pad": 4}])
