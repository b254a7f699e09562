import numpy as np
import pytest
import torch

from cnnlab.config import load_recipe
from cnnlab.data.augment import build_augmentations
from cnnlab.data.loader import DeviceLoader
from cnnlab.data.normalize import SCHEMES, fit_channel_stats, fit_normalization


def _data(n=250):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 3, 6, 6), dtype=np.uint8), rng.integers(0, 10, n)


def test_eval_batches_are_the_normalized_images_in_order():
    images, labels = _data()
    stats = fit_channel_stats(images)
    loader = DeviceLoader(images, labels, batch_size=64, stats=stats)
    xs, ys = zip(*loader)
    x = torch.cat(xs).numpy()
    expected = (images / 255.0 - np.array(stats.mean)[:, None, None]) / np.array(stats.std)[:, None, None]
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(torch.cat(ys).numpy(), labels)
    # Normalized with train-fit stats, the train split itself has zero mean and unit variance per channel.
    np.testing.assert_allclose(x.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=(0, 2, 3)), 1, atol=1e-4)
    # ChannelStats.normalize (a batch for the settings measurement, a whitening fit) gives what the loader feeds.
    np.testing.assert_allclose(stats.normalize(torch.from_numpy(images)).numpy(), x, rtol=1e-5, atol=1e-5)


def test_shuffled_epoch_visits_every_image_once_and_is_seeded():
    images, labels = _data()
    images[:, 0, 0, 0] = np.arange(250) % 256  # tag each image
    stats = fit_channel_stats(images)

    def epoch(seed):
        loader = DeviceLoader(images, np.arange(250), batch_size=64, stats=stats, shuffle=True,
                              generator=torch.Generator().manual_seed(seed))
        return torch.cat([y for _, y in loader])

    order = epoch(0)
    assert sorted(order.tolist()) == list(range(250)) and order.tolist() != list(range(250))
    assert torch.equal(order, epoch(0)) and not torch.equal(order, epoch(1))


def test_augmented_channels_last_batches():
    images, labels = _data(64)
    loader = DeviceLoader(images, labels, batch_size=32, stats=fit_channel_stats(images), shuffle=True,
                          augment=build_augmentations([{"name": "random_crop", "padding": 1}, {"name": "flip_lr"}]),
                          generator=torch.Generator().manual_seed(0), channels_last=True)
    x, y = next(iter(loader))
    assert x.shape == (32, 3, 6, 6) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)


def test_a_lone_last_training_image_is_dropped():
    images, labels = _data(129)
    stats = fit_channel_stats(images)
    train = DeviceLoader(images, labels, batch_size=64, stats=stats, shuffle=True, generator=torch.Generator())
    evaluation = DeviceLoader(images, labels, batch_size=64, stats=stats)
    assert len(train) == 2 and sum(len(y) for _, y in train) == 128
    assert len(evaluation) == 3 and sum(len(y) for _, y in evaluation) == 129


SCHEME_WORDS = {"fixed": ["data.normalize_mean=[0.4, 0.5, 0.6]", "data.normalize_std=[0.2, 0.25, 0.3]"]}


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_loader_feeds_what_normalize_gives_for_every_scheme(scheme, channels_last):
    images, labels = _data()
    data = load_recipe(None, [f"data.normalize={scheme}", *SCHEME_WORDS.get(scheme, [])]).data
    stats = fit_normalization(data, images)
    loader = DeviceLoader(images, labels, batch_size=64, stats=stats, channels_last=channels_last)
    batches = [x for x, _ in loader]
    layout = torch.channels_last if channels_last else torch.contiguous_format
    assert all(x.is_contiguous(memory_format=layout) and x.dtype == torch.float32 for x in batches)
    np.testing.assert_allclose(torch.cat(batches).numpy(), stats.normalize(torch.from_numpy(images)).numpy(),
                               rtol=1e-5, atol=1e-5)


def test_the_channel_scheme_keeps_the_fused_subtract_and_multiply():
    images, labels = _data()
    stats = fit_channel_stats(images)
    x = torch.cat([x for x, _ in DeviceLoader(images, labels, batch_size=64, stats=stats)])
    shift = 255.0 * torch.tensor(stats.mean).view(1, 3, 1, 1)  # the loader's operations before the schemes
    scale = 1.0 / (255.0 * torch.tensor(stats.std).view(1, 3, 1, 1))
    assert torch.equal(x, torch.from_numpy(images).float().sub_(shift).mul_(scale))
