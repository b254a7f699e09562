"""Real Fashion-MNIST: a short scratch run learns what the lab's networks learn.

The full-length runs take minutes and are recorded in docs/scratch.md; this one trains on a
subset for seconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.errors import CnnlabError
from cnnlab.scratch import Solver, evaluate
from cnnlab.scratch.threads import blas_threads
from cnnlab.scratch.train import ScratchTrainConfig, build_model, prepare_data
from tests.conftest import need

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fashion():
    try:
        return prepare_data("fashion_mnist", val_size=2000, seed=0, train_limit=12000, dtype=np.float32)
    except CnnlabError as err:
        need(False, f"Fashion-MNIST is not installed ({err})")


def test_fc_net_learns_fashion_mnist(fashion):
    config = ScratchTrainConfig(model="fc", hidden=(256, 128), norm="batchnorm", dropout=0.25)
    model = build_model(config, fashion.train[0].shape[1:], len(fashion.classes))
    solver = Solver(model, fashion.train, fashion.val, update_rule="adam", optim_config={"lr": 1e-3},
                    batch_size=128, num_epochs=3)
    with blas_threads(1):  # on a shared 2-core machine, two OpenBLAS threads can be 10x slower than one
        solver.train()
    # sklearn's MLP baseline reaches 87.0% with all 60k images; 12k images and 3 epochs give ~85%
    assert evaluate(model, *fashion.test)["acc"] > 0.83
