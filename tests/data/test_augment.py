"""Batched augmentations against torchvision's per-image transforms.

Each random op is replayed: a generator seeded like the op's draws the same per-image parameters
through the op's own ``sample_*`` function, and torchvision v2's functional transform, given those
parameters, must give the same image, one image at a time.
"""

import inspect
import math

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
import torchvision.transforms.v2 as T2
import torchvision.transforms.v2.functional as TF2
from torchvision.transforms.v2 import InterpolationMode

from cnnlab.data.augment import AUGMENTATIONS, OPTION_RULES, build_augmentations, flip_lr, random_crop
from cnnlab.data.augment_color import (JitterFactors, apply_color_jitter, apply_noise, color_jitter, gaussian_noise,
                                       sample_color_jitter, sample_noise)
from cnnlab.data.augment_geometry import (apply_resized_crop, flip_ud, random_erasing, random_resized_crop, rotate,
                                          sample_erasing, sample_resized_crop, sample_rotate, sample_translate,
                                          translate)
from cnnlab.errors import CnnlabError

BILINEAR = InterpolationMode.BILINEAR


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
    with pytest.raises(CnnlabError, match="unknown augmentation 'flip'.*valid: color_jitter, flip_lr, flip_ud, "
                                          "gaussian_noise, random_crop, random_erasing, random_resized_crop, "
                                          "rotate, translate"):
        build_augmentations([{"name": "flip"}])
    with pytest.raises(CnnlabError, match="has no option 'pad'; did you mean 'padding'"):
        build_augmentations([{"name": "random_crop", "pad": 4}])


# ---------------------------------------------------------------- every registered op

def seeded(seed):
    return torch.Generator().manual_seed(seed)


def difference(ours, reference):
    """Signed difference in grey levels, as int."""
    return ours.int() - reference.int()


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", AUGMENTATIONS.names())
def test_every_op_keeps_shape_and_dtype_and_draws_only_from_its_generator(name, channels):
    x = images(8, channels, 12, 10)  # H != W, so a swapped axis would show
    before = x.clone()
    op = AUGMENTATIONS.get(name)
    torch.manual_seed(1)  # the global generator must not matter: the same seed gives the same batch
    out = op(x, seeded(5))
    torch.manual_seed(2)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert torch.equal(op(x, seeded(5)), out) and not torch.equal(op(x, seeded(6)), out)
    assert torch.equal(x, before)  # the input batch is left as it was


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", AUGMENTATIONS.names())
def test_every_op_draws_its_parameters_per_image(name, channels):
    x = images(1, channels, 12, 10).expand(16, -1, -1, -1)  # one image, 16 times
    out = AUGMENTATIONS.get(name)(x, seeded(0))
    assert len({o.numpy().tobytes() for o in out}) > 1  # one draw for the whole batch would give one image


@pytest.mark.parametrize("name", AUGMENTATIONS.names())
def test_every_option_has_a_rule_and_every_default_passes_it(name):
    parameters = dict(inspect.signature(AUGMENTATIONS.get(name)).parameters)
    del parameters["x"], parameters["generator"]
    assert set(OPTION_RULES[name]) == set(parameters)
    for option, parameter in parameters.items():
        assert OPTION_RULES[name][option](parameter.default) is None, option
    build_augmentations([{"name": name, **{k: p.default for k, p in parameters.items()}}])


@pytest.mark.parametrize("spec, message", [
    ({"name": "rotate", "degrees": 200}, "augmentation 'rotate' option 'degrees' must be in [0, 180], got 200"),
    ({"name": "rotate", "degrees": [30, 10]}, "augmentation 'rotate' option 'degrees' must be a pair [low, high] "
                                              "with -180 <= low <= high <= 180, got [30, 10]"),
    ({"name": "rotate", "fill": "white"}, "augmentation 'rotate' option 'fill' must be in [0, 255], got 'white'"),
    ({"name": "flip_lr", "p": 1.5}, "augmentation 'flip_lr' option 'p' must be in [0, 1], got 1.5"),
    ({"name": "random_crop", "padding": -1}, "augmentation 'random_crop' option 'padding' must be an integer >= 0, "
                                             "got -1"),
    ({"name": "random_crop", "padding": 2.5}, "augmentation 'random_crop' option 'padding' must be an integer >= 0, "
                                              "got 2.5"),
    ({"name": "random_crop", "padding_mode": "wrap"}, "augmentation 'random_crop' option 'padding_mode' must be one "
                                                      "of constant, reflect, got 'wrap'"),
    ({"name": "random_resized_crop", "scale": [0, 1]}, "augmentation 'random_resized_crop' option 'scale' must be a "
                                                       "pair [low, high] with 0 < low <= high <= 1, got [0, 1]"),
    ({"name": "random_erasing", "ratio": [3.3, 0.3]}, "augmentation 'random_erasing' option 'ratio' must be a pair "
                                                      "[low, high] with 0 < low <= high, got [3.3, 0.3]"),
    ({"name": "random_erasing", "value": 300}, "augmentation 'random_erasing' option 'value' must be in [0, 255], "
                                               "got 300"),
    ({"name": "color_jitter", "hue": 0.6}, "augmentation 'color_jitter' option 'hue' must be in [0, 0.5], got 0.6"),
    ({"name": "color_jitter", "brightness": -0.1}, "augmentation 'color_jitter' option 'brightness' must be >= 0, "
                                                   "got -0.1"),
    ({"name": "translate", "fraction": 1}, "augmentation 'translate' option 'fraction' must be in [0, 1), got 1"),
    ({"name": "gaussian_noise", "std": -1}, "augmentation 'gaussian_noise' option 'std' must be >= 0, got -1"),
])
def test_out_of_range_options_fail_when_the_recipe_is_built(spec, message):
    with pytest.raises(CnnlabError) as error:
        build_augmentations([{"name": "flip_lr"}, spec])
    assert str(error.value) == message


def test_pairs_and_bounds_that_are_valid_build_and_run():
    ops = build_augmentations([{"name": "rotate", "degrees": [-180, 180], "fill": 255, "p": 0},
                               {"name": "random_resized_crop", "scale": [1, 1], "ratio": [0.5, 0.5]},
                               {"name": "translate", "fraction": [0, 0.99]},
                               {"name": "color_jitter", "brightness": [0.1, 0.6], "contrast": 1, "hue": [-0.5, 0.5]},
                               {"name": "random_crop", "padding": 0, "padding_mode": "reflect"},
                               {"name": "gaussian_noise", "std": 0, "p": 1}])
    x = images(4, 3, 12, 10)
    for op in ops:
        x = op(x, seeded(0))
    assert x.shape == (4, 3, 12, 10) and x.dtype == torch.uint8


# ---------------------------------------------------------------- geometry

def test_reflect_crop_equals_torchvision_reflect_pad_then_crop():
    x = images(32, 3, 9, 11)
    out = random_crop(x, seeded(4), padding=4, padding_mode="reflect")
    replay = seeded(4)
    dy, dx = (torch.randint(0, 9, (32,), generator=replay) for _ in range(2))
    for i in range(32):
        ref = TF2.crop(TF2.pad(x[i], [4], padding_mode="reflect"), int(dy[i]), int(dx[i]), 9, 11)
        assert torch.equal(out[i], ref)
    with pytest.raises(CnnlabError, match="padding_mode 'reflect' needs padding < the image size; got padding 9"):
        random_crop(x, seeded(0), padding=9, padding_mode="reflect")


def test_flip_ud_equals_torchvision_vertical_flip_on_the_drawn_images():
    x = images(1000, 2, 4, 6)
    out = flip_ud(x, seeded(0), p=0.3)
    flip = torch.rand(1000, generator=seeded(0)) < 0.3
    for i in range(1000):
        assert torch.equal(out[i], TF2.vertical_flip(x[i]) if flip[i] else x[i])
    assert abs(int(flip.sum()) - 300) < 5 * (1000 * 0.3 * 0.7) ** 0.5  # Binomial(1000, 0.3): 5 sigma


@pytest.mark.parametrize("channels, size", [(1, (17, 23)), (3, (17, 23)), (3, (16, 16))])
def test_rotate_matches_torchvision_bilinear_rotate(channels, size):
    x = images(64, channels, *size)
    out = rotate(x, seeded(2), degrees=180, fill=77, p=0.8)
    angle, chosen = sample_rotate(64, seeded(2), 180, 0.8)
    ref = torch.stack([TF2.rotate(x[i], float(angle[i]), interpolation=BILINEAR, fill=77) if chosen[i] else x[i]
                       for i in range(64)])
    # Both sample bilinearly at the same positions, computed in float32 along different paths (our
    # affine_grid against torchvision's own grid), so a pixel whose value lands near k + 0.5 can round
    # the other way: measured at most 1 grey level on 0 to 3e-5 of the pixels.
    d = difference(out, ref).abs()
    assert int(d.max()) <= 1 and float((d > 0).float().mean()) < 1e-4
    assert 0 < int((~chosen).sum()) < 64 and torch.equal(out[~chosen], x[~chosen])  # p: the others untouched


def test_rotate_turns_counter_clockwise_like_torchvision_fast_path():
    x = images(4, 3, 8, 8)
    for angle in (90, -90, 180):  # torchvision uses rot90 for these: exact, and the direction is checked
        out = rotate(x, seeded(0), degrees=[angle, angle])
        assert all(torch.equal(out[i], TF2.rotate(x[i], angle, interpolation=BILINEAR, fill=0)) for i in range(4))
    angle, _ = sample_rotate(5000, seeded(1), [10, 30], 1.0)
    assert 10 <= float(angle.min()) < 10.1 and 29.9 < float(angle.max()) < 30  # a [low, high] range


@pytest.mark.parametrize("channels, size", [(1, (32, 32)), (3, (17, 23))])
def test_random_resized_crop_matches_torchvision_resized_crop(channels, size):
    x = images(128, channels, *size)
    out = random_resized_crop(x, seeded(3))
    boxes = sample_resized_crop(128, *size, seeded(3), scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3))

    def reference(image, i):
        box = [int(b[i]) for b in boxes]
        return TF2.resized_crop(image, *box, list(size), interpolation=BILINEAR, antialias=False)

    # torchvision on uint8 takes PyTorch's uint8 bilinear kernel (fixed-point weights, CPU with
    # AVX2/AVX512): 1 grey level off on about 15% of the pixels, never more (measured).
    d = difference(out, torch.stack([reference(x[i], i) for i in range(128)])).abs()
    assert int(d.max()) <= 1
    # On float images torchvision interpolates in float as we do; our source positions pass through
    # grid_sample's [-1, 1] units, so a value near k + 0.5 can round the other way: measured 0 on 32x32
    # and 0.25% of the pixels on 17x23, 1 grey level at most.
    ref = torch.stack([reference(x[i].float(), i).round().to(torch.uint8) for i in range(128)])
    d = difference(out, ref).abs()
    assert int(d.max()) <= 1 and float((d > 0).float().mean()) < 0.005


def test_resized_crop_boxes_lie_inside_with_the_asked_area_and_ratio():
    top, left, h, w = sample_resized_crop(4000, 32, 32, seeded(0), scale=(0.25, 0.5), ratio=(0.5, 2.0))
    assert bool(((top >= 0) & (left >= 0) & (top + h <= 32) & (left + w <= 32) & (h > 0) & (w > 0)).all())
    area = (h * w).float() / (32 * 32)
    assert 0.21 < float(area.min()) < 0.27 and 0.47 < float(area.max()) < 0.56  # +-rounding of h and w
    assert len(set(top.tolist())) > 20 and len(set(w.tolist())) > 8


@pytest.mark.parametrize("size, ratio", [((10, 10), (5.0, 6.0)), ((10, 40), (0.5, 1.0))])
def test_resized_crop_falls_back_to_torchvision_centre_crop(size, ratio):
    # No proposal fits, so torchvision's make_params (global RNG) deterministically takes its fallback.
    expected = T2.RandomResizedCrop(size, scale=(0.9, 1.0), ratio=ratio).make_params([torch.zeros(1, *size)])
    boxes = sample_resized_crop(8, *size, seeded(0), scale=(0.9, 1.0), ratio=ratio)
    for field, value in zip(boxes, (expected["top"], expected["left"], expected["height"], expected["width"])):
        assert field.tolist() == [value] * 8
    x = images(8, 3, *size)
    ref = TF2.resized_crop(x[0].float(), *(int(b[0]) for b in boxes), list(size), interpolation=BILINEAR,
                           antialias=False).round().to(torch.uint8)
    # Upsampling 10 columns to 40 puts many values exactly on k + 0.5: float rounding decides those.
    assert int(difference(apply_resized_crop(x, boxes)[0], ref).abs().max()) <= 1


@pytest.mark.parametrize("channels, size, fraction", [(1, (32, 32), 0.125), (3, (17, 23), (0.3, 0.45))])
def test_translate_equals_torchvision_affine_with_the_drawn_shift(channels, size, fraction):
    x = images(64, channels, *size)
    out = translate(x, seeded(1), fraction=fraction, fill=200)
    dy, dx = sample_translate(64, *size, seeded(1), fraction)
    for i in range(64):
        ref = TF2.affine(x[i], angle=0.0, translate=[int(dx[i]), int(dy[i])], scale=1.0, shear=[0.0, 0.0], fill=200)
        assert torch.equal(out[i], ref)
    assert bool((dy != 0).any() and (dx != 0).any())


def test_translate_reaches_every_shift_in_its_range():
    fx, fy = 0.3, 0.45  # of the width 23: |dx| <= round(6.9) = 7; of the height 17: |dy| <= round(7.65) = 8
    dy, dx = sample_translate(20000, 17, 23, seeded(0), (fx, fy))
    assert set(dx.tolist()) == set(range(-7, 8)) and set(dy.tolist()) == set(range(-8, 9))


@pytest.mark.parametrize("channels, size", [(1, (12, 10)), (3, (32, 32))])
def test_random_erasing_equals_torchvision_erase_on_the_drawn_box(channels, size):
    x = images(200, channels, *size)
    out = random_erasing(x, seeded(7), p=0.5, value=13)
    boxes = sample_erasing(200, *size, seeded(7), p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3))
    for i in range(200):
        box = [int(b[i]) for b in boxes]
        assert torch.equal(out[i], TF2.erase(x[i], *box, v=torch.tensor(13.0)))
    erased = boxes.height * boxes.width > 0
    assert abs(int(erased.sum()) - 100) < 5 * 50 ** 0.5  # Binomial(200, 0.5): 5 sigma (few find no box)
    area = (boxes.height * boxes.width)[erased].float() / (size[0] * size[1])
    assert float(area.min()) > 0.005 and float(area.max()) < 0.45  # 2% to 33%, with h and w rounded


def test_random_erasing_without_a_fitting_box_leaves_the_image_as_torchvision_does():
    erasing = T2.RandomErasing(p=1.0, scale=(0.99, 1.0), ratio=(1.0, 1.0))  # every box is the whole 10x10 image
    assert erasing.make_params([torch.zeros(1, 10, 10)])["v"] is None  # torchvision then returns the input
    x = images(16, 1, 10, 10)
    assert torch.equal(random_erasing(x, seeded(0), p=1.0, scale=(0.99, 1.0), ratio=(1.0, 1.0)), x)


# ---------------------------------------------------------------- colour and noise

STEPS = [TF2.adjust_brightness, TF2.adjust_contrast, TF2.adjust_saturation, TF2.adjust_hue]
# Our step minus torchvision's on uint8, in grey levels, as measured: torchvision converts each
# step's float result to uint8 by truncation where we round once, so ours is up to 1 higher;
# its contrast and saturation also floor the grey image before blending (up to 1 more, either way,
# times |1 - factor| <= 0.8), and its hue converts back with x * 255.999 truncated.
STEP_BOUNDS = {1: [(0, 1), (0, 1), (0, 0), (0, 0)], 3: [(0, 1), (0, 1), (-1, 2), (-1, 1)]}


@pytest.mark.parametrize("channels", [1, 3])
def test_each_jitter_step_matches_torchvision_adjust_on_uint8(channels):
    x = images(64, channels, 12, 10)
    factors = sample_color_jitter(64, seeded(0), brightness=0.8, contrast=0.8, saturation=0.8, hue=0.5)
    for k, step in enumerate(STEPS):
        only = JitterFactors(*(f if j == k else None for j, f in enumerate(factors[:4])), order=factors.order)
        ref = torch.stack([step(x[i], float(factors[k][i])) for i in range(64)])
        d = difference(apply_color_jitter(x, only), ref)
        low, high = STEP_BOUNDS[channels][k]
        assert low <= int(d.min()) and int(d.max()) <= high, step.__name__
        if channels == 1 and k >= 2:  # saturation and hue leave a grey image as it is, as torchvision's
            assert torch.equal(ref, x) and torch.equal(apply_color_jitter(x, only), x)


@pytest.mark.parametrize("channels", [1, 3])
def test_color_jitter_is_torchvision_chain_in_float(channels):
    x = images(64, channels, 12, 10)
    out = color_jitter(x, seeded(3), brightness=0.8, contrast=0.8, saturation=0.8, hue=0.5)
    factors = sample_color_jitter(64, seeded(3), brightness=0.8, contrast=0.8, saturation=0.8, hue=0.5)

    def chain(image, i):
        for k in factors.order[i].tolist():  # the image's own order, as torchvision's ColorJitter draws one
            image = STEPS[k](image, float(factors[k][i]))
        return image

    # torchvision on float images in [0, 1] does not quantize between steps, as we do not: measured
    # equal after rounding; allow 1 grey level on 1e-4 of the pixels for float rounding near k + 0.5.
    ref = torch.stack([(chain(x[i].float() / 255, i) * 255).round().to(torch.uint8) for i in range(64)])
    d = difference(out, ref).abs()
    assert int(d.max()) <= 1 and float((d > 0).float().mean()) < 1e-4
    # On uint8 torchvision truncates after each of the four steps (and floors its grey images), and
    # later factors (up to 1.8) scale the earlier losses: over ten seeds, -4 to +6 grey levels for RGB
    # (more than 2 on up to 7% of the pixels), 0 to 3 for grey (two steps; contrast's loss times a
    # later brightness of up to 1.8).
    d = difference(out, torch.stack([chain(x[i], i) for i in range(64)]))
    low, high = (0, 3) if channels == 1 else (-4, 6)
    assert low <= int(d.min()) and int(d.max()) <= high


def test_jitter_factors_are_drawn_in_torchvision_ranges():
    f = sample_color_jitter(20000, seeded(0), brightness=1.5, contrast=0.4, saturation=[0.1, 0.6], hue=0.1)
    for factor, (low, high) in zip(f, [(0.0, 2.5), (0.6, 1.4), (0.1, 0.6), (-0.1, 0.1)]):
        assert low <= float(factor.min()) < low + 0.01 and high - 0.01 < float(factor.max()) < high
    assert sample_color_jitter(4, seeded(0), 0, 0.4, 0, 0)[:4:2] == (None, None)  # 0 turns a step off
    # each image's order is a permutation of the four steps, all 24 about equally often
    orders = f.order.tolist()
    assert all(sorted(o) == [0, 1, 2, 3] for o in orders)
    counts = np.unique(np.array(orders), axis=0, return_counts=True)[1]
    assert len(counts) == 24 and counts.min() > 20000 / 24 * 0.85
    with pytest.raises(CnnlabError, match="'color_jitter' needs images with 1 or 3 channels, got 4"):
        color_jitter(images(2, 4, 5, 5), seeded(0))


def test_gaussian_noise_is_torchvision_gaussian_noise_with_the_same_noise():
    x = images(64, 3, 12, 10)
    torch.manual_seed(0)  # torchvision draws its noise with randn_like from the global generator
    ref = TF2.gaussian_noise(x.float() / 255, sigma=20 / 255, clip=True)
    torch.manual_seed(0)
    noise = torch.randn(x.shape)
    out = apply_noise(x, noise.clone(), torch.ones(64, dtype=torch.bool), std=20)
    # torchvision adds in [0, 1] units, we in grey levels: the same sum up to float rounding, measured
    # equal after rounding; allow 1 grey level on 1e-4 of the pixels.
    d = difference(out, (ref * 255).round().to(torch.uint8)).abs()
    assert int(d.max()) <= 1 and float((d > 0).float().mean()) < 1e-4
    # torchvision's own uint8 path truncates the noise to an integer before adding: 1 level at most.
    torch.manual_seed(0)
    assert int(difference(out, TF2.gaussian_noise(x, sigma=20 / 255)).abs().max()) <= 1


def test_gaussian_noise_op_adds_its_sampled_noise_to_the_chosen_images():
    x = torch.full((2000, 1, 8, 8), 128, dtype=torch.uint8)  # mid-grey: no clipping at std 10
    out = gaussian_noise(x, seeded(0), std=10, p=0.3)
    noise, chosen = sample_noise(x, seeded(0), p=0.3)
    assert torch.equal(out, apply_noise(x, noise, chosen, std=10))
    assert torch.equal(out[~chosen], x[~chosen])
    assert abs(int(chosen.sum()) - 600) < 5 * (2000 * 0.3 * 0.7) ** 0.5  # Binomial(2000, 0.3): 5 sigma
    std = difference(out[chosen], x[chosen]).float().std()
    assert math.isclose(float(std), math.sqrt(10 ** 2 + 1 / 12), rel_tol=0.02)  # rounding adds 1/12 variance
