"""FullyConnectedNet and ThreeLayerConvNet: shapes, the loss at initialization, learning, state."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.errors import CnnlabError
from cnnlab.scratch import FullyConnectedNet, ThreeLayerConvNet, get_update_rule

rng = np.random.default_rng(0)


def _fit_small_batch(model, X, y, steps=60, lr=1e-2):
    adam, configs = get_update_rule("adam"), {k: {"lr": lr} for k in model.params}
    for _ in range(steps):
        _, grads = model.loss(X, y)
        for k in model.params:
            model.params[k], configs[k] = adam(model.params[k], grads[k], configs[k])
    return np.mean(model.scores(X).argmax(axis=1) == y)


@pytest.mark.parametrize("norm", [None, "batchnorm", "layernorm"])
def test_fc_net_parameters_and_shapes(norm):
    model = FullyConnectedNet([20, 30], input_dim=3 * 4 * 4, num_classes=7, normalization=norm)
    expected = {"W1": (48, 20), "W2": (20, 30), "W3": (30, 7), "b3": (7,)}
    if norm != "batchnorm":  # a layer followed by batchnorm has no bias
        expected.update(b1=(20,), b2=(30,))
    if norm:
        expected.update(gamma1=(20,), beta1=(20,), gamma2=(30,), beta2=(30,))
    assert {k: v.shape for k, v in model.params.items()} == expected
    X = rng.standard_normal((5, 3, 4, 4))
    assert model.scores(X).shape == (5, 7)
    loss, grads = model.loss(X, rng.integers(0, 7, 5))
    assert set(grads) == set(model.params) and all(grads[k].shape == p.shape for k, p in model.params.items())


def test_initial_loss_is_log_num_classes():
    # small random weights give near-uniform scores: softmax loss ~ log(C), the lab's sanity check
    model = FullyConnectedNet([50], input_dim=30, num_classes=10, weight_scale=1e-3, seed=0)
    loss, _ = model.loss(rng.standard_normal((200, 30)), rng.integers(0, 10, 200))
    assert loss == pytest.approx(np.log(10), rel=1e-3)
    cnn = ThreeLayerConvNet((1, 8, 8), num_filters=4, filter_size=3, hidden_dim=10, weight_scale=1e-3, seed=0)
    loss, _ = cnn.loss(rng.standard_normal((20, 1, 8, 8)), rng.integers(0, 10, 20))
    assert loss == pytest.approx(np.log(10), rel=1e-3)


def test_regularization_adds_half_reg_sum_of_squared_weights():
    X, y = rng.standard_normal((4, 6)), rng.integers(0, 3, 4)
    plain = FullyConnectedNet([5], input_dim=6, num_classes=3, dtype=np.float64, seed=3)
    regular = FullyConnectedNet([5], input_dim=6, num_classes=3, dtype=np.float64, reg=0.7, seed=3)
    squares = sum(np.sum(plain.params[k] ** 2) for k in ("W1", "W2"))
    assert regular.loss(X, y)[0] == pytest.approx(plain.loss(X, y)[0] + 0.5 * 0.7 * squares)


@pytest.mark.parametrize("norm", [None, "batchnorm"])
def test_models_overfit_a_small_batch(norm):
    X, y = rng.standard_normal((20, 1, 8, 8)), rng.integers(0, 10, 20)
    fc = FullyConnectedNet([64, 64], input_dim=64, normalization=norm, weight_scale="he", seed=0)
    assert _fit_small_batch(fc, X, y) == 1.0
    cnn = ThreeLayerConvNet((1, 8, 8), num_filters=8, filter_size=3, hidden_dim=32, normalization=norm,
                            weight_scale="he", seed=0)
    assert _fit_small_batch(cnn, X, y) == 1.0


def test_float32_models_stay_float32():
    model = ThreeLayerConvNet((1, 8, 8), num_filters=4, filter_size=3, hidden_dim=10, normalization="batchnorm")
    _, grads = model.loss(rng.standard_normal((4, 1, 8, 8)), rng.integers(0, 10, 4))
    assert all(g.dtype == np.float32 for g in grads.values())
    assert model.scores(rng.standard_normal((2, 1, 8, 8))).dtype == np.float32


def test_batchnorm_running_stats_move_in_training_and_are_used_at_test():
    model = FullyConnectedNet([8], input_dim=5, num_classes=3, normalization="batchnorm", dtype=np.float64, seed=0)
    X = rng.standard_normal((50, 5)) * 3 + 2
    before = model.scores(X)
    for _ in range(30):
        model.loss(X, rng.integers(0, 3, 50))
    stats = model.bn_stats["bn1"]
    h = X @ model.params["W1"]
    np.testing.assert_allclose(stats.mean, h.mean(axis=0), rtol=0.05)  # 1 - 0.9**30 of the way there
    assert not np.allclose(model.scores(X), before)


def test_dropout_is_off_at_test_time_and_seeded_in_training():
    model = FullyConnectedNet([50], input_dim=10, dropout=0.5, dtype=np.float64, seed=0)
    X, y = rng.standard_normal((8, 10)), rng.integers(0, 10, 8)
    np.testing.assert_array_equal(model.scores(X), model.scores(X))
    a = model.loss(X, y, rng=np.random.default_rng(5))[0]
    assert a == model.loss(X, y, rng=np.random.default_rng(5))[0]
    assert a != model.loss(X, y, rng=np.random.default_rng(6))[0]


def test_state_dict_round_trip():
    model = ThreeLayerConvNet((1, 8, 8), num_filters=4, filter_size=3, hidden_dim=10, normalization="batchnorm", seed=0)
    model.loss(rng.standard_normal((6, 1, 8, 8)), rng.integers(0, 10, 6))
    state = model.state_dict()
    assert "bn1.running_mean" in state
    other = ThreeLayerConvNet((1, 8, 8), num_filters=4, filter_size=3, hidden_dim=10, normalization="batchnorm", seed=1)
    other.load_state_dict(state)
    X = rng.standard_normal((3, 1, 8, 8))
    np.testing.assert_array_equal(other.scores(X), model.scores(X))
    with pytest.raises(CnnlabError, match="missing"):
        other.load_state_dict({k: v for k, v in state.items() if k != "W1"})


def test_bad_model_options():
    with pytest.raises(CnnlabError, match="unknown normalization 'batchnrom'; did you mean 'batchnorm'"):
        FullyConnectedNet([10], normalization="batchnrom")
    with pytest.raises(CnnlabError, match="dropout is the probability of dropping"):
        FullyConnectedNet([10], dropout=1.0)
    with pytest.raises(CnnlabError, match="filter_size must be odd"):
        ThreeLayerConvNet((1, 8, 8), filter_size=4)
    with pytest.raises(CnnlabError, match="even height and width"):
        ThreeLayerConvNet((1, 7, 8))
    with pytest.raises(CnnlabError, match="weight_scale"):
        FullyConnectedNet([10], weight_scale="xavier")
