"""FastNet (the fast Fashion-MNIST recipe's net): shapes, a hand parameter count, and whitening
checked with numpy's own covariance."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.models import build_model, count_parameters

# At 1x28x28 and the default widths 16/32/64: the whitening conv has 2*4 filters of 1x2x2; each group
# is conv1 3x3 (no bias), BN (weight and bias), conv2 3x3 (no bias), BN.
HAND_COUNT = (
    8 * 1 * 2 * 2  # whiten: 32, frozen
    + 8 * 16 * 9 + 2 * 16 + 16 * 16 * 9 + 2 * 16  # group1: 1,152 + 32 + 2,304 + 32
    + 16 * 32 * 9 + 2 * 32 + 32 * 32 * 9 + 2 * 32  # group2: 4,608 + 64 + 9,216 + 64
    + 32 * 64 * 9 + 2 * 64 + 64 * 64 * 9 + 2 * 64  # group3: 18,432 + 128 + 36,864 + 128
    + 64 * 10  # fc, no bias
)


def test_parameter_count_matches_the_hand_count():
    assert HAND_COUNT == 73_696
    with torch.device("meta"):
        model = build_model("fastnet")
        wide = build_model("fastnet", widths=[32, 64, 128])  # the long recipe's net
    assert count_parameters(model) == HAND_COUNT
    assert count_parameters(model, trainable_only=True) == HAND_COUNT - 32  # the whitening filters are frozen
    groups = (2_304 + 9_216 + 128) + (18_432 + 36_864 + 256) + (73_728 + 147_456 + 512)  # convs + BN, as above
    assert count_parameters(wide) == 32 + groups + 128 * 10 == 290_208


def _map_shapes(model, x: torch.Tensor) -> list[tuple[int, ...]]:
    shapes = []
    hooks = [getattr(model.features, name).register_forward_hook(lambda m, a, out: shapes.append(tuple(out.shape)))
             for name in ("whiten", "group1", "group2", "group3", "pool")]
    model(x)
    for hook in hooks:
        hook.remove()
    return shapes


def test_shapes_through_the_net():
    model = build_model("fastnet")
    assert _map_shapes(model, torch.randn(3, 1, 28, 28)) == [
        (3, 8, 27, 27), (3, 16, 13, 13), (3, 32, 6, 6), (3, 64, 3, 3), (3, 64, 1, 1)]  # airbench's 3x3 at the end
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    # 3x32x32 (CIFAR-10): 32 -> 31 -> 15 -> 7 -> 3 and airbench94's 24 whitening filters.
    cifar = build_model("fastnet", in_chans=3, input_size=(32, 32), num_classes=100)
    assert cifar.features.whiten.weight.shape == (24, 3, 2, 2)
    assert cifar(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    # 1x16x16: 15 -> 7 -> 3, and group3 keeps 3x3 rather than pool to 1x1, where BatchNorm sees one value
    # per channel for a batch of one.
    small = build_model("fastnet", input_size=(16, 16))
    assert _map_shapes(small, torch.randn(2, 1, 16, 16))[3] == (2, 64, 3, 3)
    assert small.train()(torch.randn(1, 1, 16, 16)).shape == (1, 10)


def _correlated_images(n: int, seed: int = 0) -> torch.Tensor:
    """Smooth random images (N, 1, 28, 28): blurred noise plus a per-image offset, so neighbouring
    pixels are strongly correlated and the raw patch covariance is far from the identity, plus a
    little white noise (std 0.3), so that no patch-covariance eigenvalue is below 0.09."""
    g = torch.Generator().manual_seed(seed)
    blurred = F.avg_pool2d(torch.randn(n, 1, 32, 32, generator=g), 5, stride=1)  # (n, 1, 28, 28)
    white = 0.3 * torch.randn(n, 1, 28, 28, generator=g)
    return 3.0 * blurred + torch.randn(n, 1, 1, 1, generator=g) + white + 0.5


def _output_covariance(model, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """numpy's covariance of the whitening outputs, over all patches: first half and second half of the filters."""
    with torch.no_grad():
        out = model.features.whiten(images)  # (N, 8, 27, 27), one output position per 2x2 patch
    d = out.shape[1] // 2
    values = out.permute(0, 2, 3, 1).reshape(-1, 2 * d).double().numpy()  # (N*27*27, 8): one row a patch
    return np.cov(values[:, :d], rowvar=False), values


def test_whitening_outputs_have_identity_covariance_on_the_training_patches():
    model = build_model("fastnet")
    images = _correlated_images(2000)
    before, _ = _output_covariance(model, images)
    assert np.abs(before - np.eye(4)).max() > 1.0  # the test data is far from white to begin with
    model.fit_to_data(images)
    after, values = _output_covariance(model, images)
    # eps = 5e-4 on eigenvalues >= 0.09 shrinks each variance by less than 0.6%.
    np.testing.assert_allclose(after, np.eye(4), atol=0.006)
    np.testing.assert_allclose(values[:, 4:], -values[:, :4], rtol=0, atol=1e-6)  # the negated copies
    # On other images from the same distribution, close to white too: the filters do not just fit the sample.
    held_out, _ = _output_covariance(model, _correlated_images(2000, seed=1))
    np.testing.assert_allclose(held_out, np.eye(4), atol=0.05)


def test_whitening_stays_frozen_while_the_rest_trains():
    model = build_model("fastnet")
    model.fit_to_data(_correlated_images(200))
    fitted = model.features.whiten.weight.clone()
    assert not model.features.whiten.weight.requires_grad
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(torch.randn(4, 1, 28, 28)).square().mean().backward()
    optimizer.step()
    assert model.features.whiten.weight.grad is None
    assert torch.equal(model.features.whiten.weight, fitted)
    assert model.features.group1.conv1.weight.grad is not None
