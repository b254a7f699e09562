"""The run seed reaches every generator, and a captured state replays each of them."""

import random

import numpy as np
import torch

from cnnlab.engine.seed import capture_rng_state, make_generator, restore_rng_state, seed_everything

CPU = torch.device("cpu")


def _draws(generator=None):
    """One value from Python's, numpy's and torch's global generators, and from ``generator``."""
    values = [random.random(), float(np.random.random()), float(torch.rand(1))]
    return values + ([float(torch.rand(1, generator=generator))] if generator is not None else [])


def test_the_seed_sets_python_numpy_and_torch():
    seed_everything(1)
    first = _draws()
    seed_everything(1)
    assert _draws() == first
    seed_everything(2)
    assert all(a != b for a, b in zip(first, _draws()))


def test_the_data_generator_follows_the_seed_but_not_the_global_stream():
    def order(seed):
        return torch.randperm(100, generator=make_generator(seed, CPU))

    assert torch.equal(order(3), order(3)) and not torch.equal(order(3), order(4))
    torch.manual_seed(3)
    assert not torch.equal(order(3), torch.randperm(100))  # shuffling does not mirror model init's draws


def test_a_captured_state_replays_every_generator():
    seed_everything(5)
    generator = make_generator(5, CPU)
    _draws(generator)  # move every stream off its seed
    state = capture_rng_state(generator)
    expected = _draws(generator)
    _draws(generator)
    restore_rng_state(state, generator)
    assert _draws(generator) == expected
