"""What ``setup`` builds from a config, checked without training: the schedule's length, the seeded data order."""

import pytest
import torch

from cnnlab.engine.session import setup
from tests.conftest import with_overrides
from tests.engine.test_schedule import _lrs


def test_the_schedule_spans_every_training_batch_of_the_run(tiny_config):
    session = setup(with_overrides(tiny_config, "train.epochs=3", "schedule.name=cosine"))
    batches = len(session.loaders["train"])
    assert batches == 8  # tiny_config: 500 training images in batches of 64
    ours = _lrs(session.scheduler, session.optimizer, 3 * batches)
    reference = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.05)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(reference, T_max=3 * batches)  # per batch, to 0 at the end
    assert ours == pytest.approx(_lrs(cosine, reference, 3 * batches), rel=1e-9, abs=1e-12)


def _first_batch(config):
    _, labels = next(iter(setup(config).loaders["train"]))
    return labels


def test_the_run_seed_sets_the_data_order(tiny_config):
    one = _first_batch(with_overrides(tiny_config, "seed=1"))
    assert torch.equal(one, _first_batch(with_overrides(tiny_config, "seed=1")))
    assert not torch.equal(one, _first_batch(with_overrides(tiny_config, "seed=2")))
