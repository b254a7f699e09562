"""The normalization schemes against numpy and scikit-learn: what each fits, and on which split."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from cnnlab.config import load_recipe
from cnnlab.data.normalize import (SCHEMES, ChannelStats, fit_channel_stats, fit_normalization, fit_pixel_stats,
                                   fit_zca, normalization_from_record)
from cnnlab.data.prepare import prepare_splits
from cnnlab.errors import CnnlabError


def data_config(*words):
    """The data section of a recipe with ``key=value`` words, validated as the CLI's are."""
    return load_recipe(None, ["data.name=synthetic", *words]).data


def correlated_images(n=4000, shape=(1, 4, 4), seed=0):
    """uint8 images whose pixels are strongly correlated (a few latent factors mixed in), so whitening
    has something to undo; D = 16 values, far fewer than the n images."""
    rng = np.random.default_rng(seed)
    D = int(np.prod(shape))
    latent = rng.standard_normal((n, 4)) @ rng.standard_normal((4, D)) * 20  # (n, D), rank 4
    noise = rng.standard_normal((n, D)) * 6  # every direction gets some variance: full rank
    return np.clip(128 + latent + noise, 0, 255).round().astype(np.uint8).reshape(n, *shape)


# --- channel: today's numbers ---------------------------------------------------------------------


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


def test_channel_scheme_gives_the_numbers_it_gave_before_the_schemes():
    images = np.random.default_rng(2).integers(0, 256, (50, 3, 6, 6), dtype=np.uint8)
    stats = fit_normalization(data_config(), images)  # the default scheme
    assert stats == fit_channel_stats(images) and stats.scheme == "channel"
    assert fit_normalization(data_config("data.normalize=true"), images) == stats  # recipes before the schemes
    # ChannelStats.normalize as it was written before, operation for operation
    x = torch.from_numpy(images).float() / 255
    before = (x - x.new_tensor(stats.mean).view(1, 3, 1, 1)) / x.new_tensor(stats.std).view(1, 3, 1, 1)
    assert torch.equal(stats.normalize(torch.from_numpy(images)), before)
    assert stats.to_record() == {"scheme": "channel", "mean": list(stats.mean), "std": list(stats.std)}


# --- pixel: practical work Q19-20 --------------------------------------------------------------------


def test_pixel_mean_and_std_images_are_numpys():
    images = np.random.default_rng(3).integers(0, 256, (777, 3, 5, 4), dtype=np.uint8)
    images[:, 1, 2, 3] = 9  # one constant pixel
    stats = fit_pixel_stats(images, chunk=100)  # chunks that do not divide N exercise the merge
    std = images.std(axis=0) / 255.0
    std[1, 2, 3] = 1.0  # constant: centred, not divided by zero
    np.testing.assert_allclose(stats.mean, images.mean(axis=0) / 255.0, rtol=1e-12)
    np.testing.assert_allclose(stats.std, std, rtol=1e-10)
    x = stats.normalize(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(x, (images / 255.0 - stats.mean) / std, rtol=1e-5, atol=1e-5)
    assert np.all(x[:, 1, 2, 3] == 0)


def test_pixel_stats_are_fit_on_the_train_split_alone():
    options = "data.options={shape: [1, 8, 8], train_size: 400, test_size: %d}"
    splits, stats = prepare_splits(data_config(options % 100, "data.val_size=100", "data.normalize=pixel"))
    np.testing.assert_allclose(stats.mean, splits.train_images.mean(axis=0) / 255.0, rtol=1e-12)
    with_val = np.concatenate([splits.train_images, splits.val_images]).mean(axis=0) / 255.0
    assert np.abs(with_val - stats.mean).max() > 1e-3  # so the check can tell train alone from train + val
    other_test, again = prepare_splits(data_config(options % 300, "data.val_size=100", "data.normalize=pixel"))
    assert not np.array_equal(other_test.test_images[:100], splits.test_images)  # other test images...
    np.testing.assert_array_equal(again.mean, stats.mean)  # ...the same fit
    np.testing.assert_array_equal(again.std, stats.std)


# --- zca: practical work Q21 -----------------------------------------------------------------------


def test_zca_whitened_training_data_has_identity_covariance():
    images = correlated_images()
    N, D = len(images), 16
    zca = fit_zca(images, epsilon=1e-6)  # the smallest eigenvalue is ~5e-4 (noise 6/255 squared)
    assert zca.eigenvalues.min() > 100 * zca.epsilon
    x = zca.normalize(torch.from_numpy(images)).numpy().reshape(N, D).astype(np.float64)
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(x.T @ x / N, np.eye(D), atol=5e-3)
    raw = images.reshape(N, D) / 255.0
    assert np.abs(np.corrcoef(raw.T) - np.eye(D)).max() > 0.5  # the input was far from white


def test_zca_matrix_equals_one_built_from_scikit_learns_pca():
    images = correlated_images(n=3000, seed=1)
    N, D = len(images), 16
    eps = 0.01
    zca = fit_zca(images, epsilon=eps, chunk=77)
    flat = images.reshape(N, D) / 255.0
    pca = PCA(whiten=True).fit(flat)
    U = pca.components_.T  # (D, D), eigenvectors as columns
    eigenvalues = pca.explained_variance_ * (N - 1) / N  # sklearn divides by N - 1; Sigma = X^T X / N
    reference = U @ np.diag(1 / np.sqrt(eigenvalues + eps)) @ U.T
    np.testing.assert_allclose(zca.matrix, reference, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(zca.mean.reshape(-1), pca.mean_, rtol=1e-12)
    np.testing.assert_allclose(np.sort(zca.eigenvalues), np.sort(eigenvalues), rtol=1e-8)
    # With eps -> 0, ZCA is sklearn's PCA whitening rotated back into pixel space.
    tiny = fit_zca(images, epsilon=1e-12)
    rotated_back = pca.transform(flat) @ pca.components_ * np.sqrt((N - 1) / N)  # (N, D)
    ours = tiny.normalize(torch.from_numpy(images)).numpy().reshape(N, D)
    np.testing.assert_allclose(ours, rotated_back, atol=2e-3)


def test_zca_does_not_depend_on_chunking():
    images = correlated_images(n=500, shape=(2, 3, 3))
    a, b = fit_zca(images, 0.1, chunk=1), fit_zca(images, 0.1)
    np.testing.assert_allclose(a.matrix, b.matrix, rtol=1e-6)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12)


# --- every scheme ---------------------------------------------------------------------------------------

FIXED = ("data.normalize=fixed", "data.normalize_mean=[0.4, 0.5, 0.6]", "data.normalize_std=[0.2, 0.25, 0.3]")
WORDS = {"none": ("data.normalize=none",), "channel": ("data.normalize=channel",),
         "pixel": ("data.normalize=pixel",), "zca": ("data.normalize=zca",),
         "imagenet": ("data.normalize=imagenet",), "fixed": FIXED}


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_normalizes_as_its_rule_says_and_reads_back_from_its_record(scheme):
    images = np.random.default_rng(4).integers(0, 256, (300, 3, 4, 4), dtype=np.uint8)
    stats = fit_normalization(data_config(*WORDS[scheme]), images)
    assert stats.scheme == scheme
    x = images / 255.0
    if scheme == "zca":
        expected = ((x.reshape(300, -1) - stats.mean.reshape(-1)) @ stats.matrix).reshape(x.shape)
    elif scheme == "pixel":
        expected = (x - stats.mean) / stats.std
    else:
        mean, std = {"none": ([0] * 3, [1] * 3), "channel": (stats.mean, stats.std),
                     "imagenet": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
                     "fixed": ([0.4, 0.5, 0.6], [0.2, 0.25, 0.3])}[scheme]
        expected = (x - np.reshape(mean, (3, 1, 1))) / np.reshape(std, (3, 1, 1))
    got = stats.normalize(torch.from_numpy(images))
    assert got.dtype == torch.float32 and got.shape == images.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)
    back = normalization_from_record(stats.to_record(), stats.arrays())
    assert torch.equal(back.normalize(torch.from_numpy(images)), got)
    assert stats.describe().startswith(f"{scheme}: ") and "\n" not in stats.describe()
    assert stats.rule()["scheme"] == scheme


def test_descriptions_give_the_values_people_check():
    images = correlated_images(n=200, shape=(1, 4, 4))
    headers, rows = fit_channel_stats(images).rows()
    assert headers == ["channel", "mean", "std"]
    assert rows == [["0", f"{images.mean() / 255:.4f}", f"{images.std() / 255:.4f}"]]
    mean = images.mean(axis=0) / 255
    headers, rows = fit_pixel_stats(images).rows()
    assert rows[0] == ["mean image", "1x4x4", f"{mean.min():.4g}", f"{mean.max():.4g}"]
    zca = fit_zca(images, 0.05)
    assert "epsilon 0.05" in zca.describe() and "whitening 16 values per image" in zca.describe()
    eigenvalues = np.linalg.eigvalsh(np.cov(images.reshape(200, 16).T / 255.0, bias=True))
    assert zca.rows()[1][1] == ["eigenvalues", "16", f"{max(eigenvalues.min(), 0):.4g}", f"{eigenvalues.max():.4g}"]
    assert ChannelStats.identity(1).rows() == ([], [])


def test_records_from_before_the_schemes_read_as_channel_or_none():
    old = normalization_from_record({"mean": [0.2860], "std": [0.3530]})
    assert old == ChannelStats((0.2860,), (0.3530,), "channel")
    assert normalization_from_record({"mean": [0.0], "std": [1.0]}).scheme == "none"  # normalize: false


# --- bad inputs: one line each ----------------------------------------------------------------------


@pytest.mark.parametrize("words, shape, message", [
    (("data.normalize=imagenet",), (1, 4, 4),
     "data.normalize: imagenet's mean and std are for RGB images, but these have 1 channel(s); set data.channels: 3"),
    (("data.normalize=fixed", "data.normalize_std=[0.5]"), (1, 4, 4),
     "data.normalize: fixed needs data.normalize_mean, one value per channel in [0, 1] pixel units (e.g. [0.5])"),
    (("data.normalize=fixed", "data.normalize_mean=[0.5, 0.5]"), (3, 4, 4),
     "data.normalize_mean has 2 value(s) but the images have 3 channel(s); give one per channel"),
    (("data.normalize=fixed", "data.normalize_mean=[0.5]", "data.normalize_std=[0.5, 0.5]"), (1, 4, 4),
     "data.normalize_std has 2 value(s) but the images have 1 channel(s); give one per channel"),
    (("data.normalize_mean=[0.5]",), (1, 4, 4),
     "data.normalize_mean is set but data.normalize is channel, which does not read it; set data.normalize: fixed "
     "to use it, or remove data.normalize_mean"),
    (("data.normalize=pixel", "data.normalize_std=[0.5]"), (1, 4, 4),
     "data.normalize_std is set but data.normalize is pixel, which does not read it; set data.normalize: fixed "
     "to use it, or remove data.normalize_std"),
    (("data.normalize=zca",), (3, 64, 64),
     "data.normalize: zca on 3x64x64 images needs a 12288x12288 covariance (1.2 GB) and its eigendecomposition; "
     "whiten at most 4096 values per image (set a smaller data.image_size) or choose channel or pixel"),
])
def test_bad_normalization_settings_are_one_line(words, shape, message):
    images = np.zeros((2, *shape), dtype=np.uint8)
    with pytest.raises(CnnlabError) as err:
        fit_normalization(data_config(*words), images)
    assert str(err.value) == message


def test_a_record_of_an_unknown_scheme_or_without_its_arrays_is_refused():
    with pytest.raises(CnnlabError, match="scheme 'lcn' is not one this cnnlab knows .*; upgrade cnnlab"):
        normalization_from_record({"scheme": "lcn"})
    with pytest.raises(CnnlabError, match="the zca normalization's file lacks mean, matrix, eigenvalues"):
        normalization_from_record({"scheme": "zca", "epsilon": 0.1})
