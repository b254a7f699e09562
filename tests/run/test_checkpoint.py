"""Checkpoints: the trainer state survives the trip through safetensors exactly (torch itself is the
reference: a restored optimizer continues as the original does), files are byte-reproducible,
and every damaged file is one clear error."""

import io
import random

import numpy as np
import pytest
import torch
from safetensors.torch import save as st_save

from cnnlab.errors import CnnlabError
from cnnlab.run.checkpoint import Checkpoints, decode, encode


def _model_and_optimizer(name: str):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 3))
    make = {"adam": lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99)),
            "sgd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
            "rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5)}[name]
    optimizer = make(model.parameters())
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.9**s)
    return model, optimizer, schedule


def _steps(model, optimizer, schedule, n: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x, y = torch.randn(16, 4, generator=g), torch.randint(0, 3, (16,), generator=g)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        schedule.step()


@pytest.mark.parametrize("name", ["adam", "sgd", "rmsprop"])
def test_restored_optimizer_and_schedule_continue_exactly_as_the_originals(tmp_path, name):
    model, optimizer, schedule = _model_and_optimizer(name)
    _steps(model, optimizer, schedule, 5, seed=1)
    store = Checkpoints(tmp_path)
    store.commit(1, model.state_dict(), {"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict()},
                 {"best_epoch": 1})
    _steps(model, optimizer, schedule, 5, seed=2)  # the original goes on

    fresh, fresh_optimizer, fresh_schedule = _model_and_optimizer(name)
    checkpoint = store.load(1)
    fresh.load_state_dict(checkpoint.weights)
    fresh_optimizer.load_state_dict(checkpoint.state["optimizer"])
    fresh_schedule.load_state_dict(checkpoint.state["schedule"])
    _steps(fresh, fresh_optimizer, fresh_schedule, 5, seed=2)
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(a, b)
    assert fresh_schedule.get_last_lr() == schedule.get_last_lr()


def test_the_codec_keeps_every_kind_of_value(tmp_path):
    state = {"ints": {0: torch.arange(3), 7: [1, (2.5, None)]}, "rng": torch.get_rng_state(),
             "np": np.arange(6, dtype=np.float32).reshape(2, 3), "py": random.getstate()[1][:5],
             "flags": (True, False, "x"), "nan": float("nan"), "inf": -float("inf"), "big": 2**100,
             "bf16": torch.ones(2, dtype=torch.bfloat16), "scalar": torch.tensor(3.0), "empty": torch.zeros(0, 4)}
    skeleton, tensors = encode(state)
    back = decode(skeleton, tensors)
    assert back["ints"][7] == [1, (2.5, None)] and torch.equal(back["ints"][0], torch.arange(3))
    assert torch.equal(back["rng"], state["rng"]) and back["py"] == state["py"] and back["big"] == 2**100
    assert isinstance(back["np"], np.ndarray) and np.array_equal(back["np"], state["np"])
    assert back["flags"] == (True, False, "x") and np.isnan(back["nan"]) and back["inf"] == -float("inf")
    assert back["bf16"].dtype == torch.bfloat16 and back["scalar"].shape == () and back["empty"].shape == (0, 4)
    # and through a committed file, whose metadata is strict JSON (no bare NaN or Infinity)
    Checkpoints(tmp_path).commit(1, {"w": torch.ones(1)}, state, {})
    read = Checkpoints(tmp_path).load(1).state
    assert np.isnan(read["nan"]) and read["inf"] == -float("inf") and read["flags"] == (True, False, "x")


def test_equal_states_give_equal_bytes_whatever_their_key_order(tmp_path):
    a = {"step": torch.tensor(1.0), "exp_avg": torch.ones(3), "meta": {"b": 1, "a": 2}}
    b = {"meta": {"a": 2, "b": 1}, "exp_avg": torch.ones(3), "step": torch.tensor(1.0)}
    one, two = Checkpoints(tmp_path / "one"), Checkpoints(tmp_path / "two")
    one.commit(1, {"w": torch.ones(2), "v": torch.zeros(2)}, a, {"best_epoch": 1, "monitor": "val_acc", "best": 0.5})
    two.commit(1, {"v": torch.zeros(2), "w": torch.ones(2)}, b, {"monitor": "val_acc", "best": 0.5, "best_epoch": 1})
    assert one.path(1).read_bytes() == two.path(1).read_bytes()


def test_commit_keeps_the_newest_and_the_best(tmp_path):
    store = Checkpoints(tmp_path)
    for epoch, best in [(1, 1), (2, 2), (3, 2), (4, 2), (5, 5)]:
        store.commit(epoch, {"w": torch.full((2,), float(epoch))}, {}, {"best_epoch": best}, keep={best})
        assert store.epochs() == sorted({epoch, best})
    store.commit(6, {"w": torch.full((2,), 6.0)}, {}, {"best_epoch": 5}, keep={5})
    assert store.latest() == 6 and store.resolve("best") == 5
    assert torch.equal(store.weights("best")["w"], torch.full((2,), 5.0))
    assert torch.equal(store.weights("last")["w"], torch.full((2,), 6.0))


def _pickle_gadget() -> bytes:
    buffer = io.BytesIO()
    torch.save({"model": torch.ones(2)}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("content, message", [
    (b"", "is not a readable safetensors file"),
    (b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage", "is not a readable safetensors file"),
    (_pickle_gadget(), "is not a readable safetensors file"),
    (st_save({"w": torch.ones(1)}), "has no cnnlab metadata"),
])
def test_a_damaged_checkpoint_is_one_clear_error(tmp_path, content, message):
    store = Checkpoints(tmp_path)
    store.path(3).write_bytes(content)
    with pytest.raises(CnnlabError, match=message) as caught:
        store.load(3)
    assert "\n" not in str(caught.value)


def test_a_checkpoint_under_another_epochs_name_is_refused(tmp_path):
    store = Checkpoints(tmp_path)
    store.commit(2, {"w": torch.ones(1)}, {}, {})
    store.path(2).rename(store.path(5))
    with pytest.raises(CnnlabError, match="it does not belong to epoch 5"):
        store.load(5)


def test_legacy_runs_keep_their_weights_readable(tmp_path):
    (tmp_path / "best.safetensors").write_bytes(st_save({"w": torch.ones(2)}, metadata={"epoch": "3"}))
    assert torch.equal(Checkpoints(tmp_path).weights("best")["w"], torch.ones(2))
    with pytest.raises(CnnlabError, match="no 'last' checkpoint"):
        Checkpoints(tmp_path).weights("last")
