import numpy as np
from sklearn.preprocessing import StandardScaler

from cnnlab.data.normalize import fit_channel_stats


def test_streaming_stats_equal_scikit_learns_scaler():
    images = np.random.default_rng(0).integers(0, 256, (1000, 3, 8, 8), dtype=np.uint8)
    stats = fit_channel_stats(images, chunk=97)  # chunks that do not divide N exercise the merge
    pixels = images.transpose(0, 2, 3, 1).reshape(-1, 3) / 255.0  # (N*H*W, C)
    scaler = StandardScaler().fit(pixels)
    np.testing.assert_allclose(stats.mean, scaler.mean_, rtol=1e-12)
    np.testing.assert_allclose(stats.std, scaler.scale_, rtol=1e-12)


def test_stats_do_not_depend_on_chunking():
    images = np.random.default_rng(1).integers(0, 256, (333, 1, 5, 5), dtype=np.uint8)
    a, b = fit_channel_stats(images, chunk=1), fit_channel_stats(images, chunk=10_000)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12)
    np.testing.assert_allclose(a.std, b.std, rtol=1e-12)


def test_constant_channel_keeps_unit_std():
    images = np.full((10, 2, 4, 4), 7, dtype=np.uint8)
    stats = fit_channel_stats(images)
    assert stats.std == (1.0, 1.0)
    np.testing.assert_allclose(stats.mean, [7 / 255] * 2)
