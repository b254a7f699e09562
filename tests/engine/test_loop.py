"""``train_one_epoch`` against the textbook PyTorch loop written out by hand."""

import copy

import pytest
import torch
import torch.nn.functional as F

from cnnlab.engine.losses import build_loss
from cnnlab.engine.loop import train_one_epoch
from cnnlab.engine.precision import resolve_precision
from cnnlab.models import build_model

FP32 = resolve_precision("cpu", "fp32", False)


def _sgd_and_schedule(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)  # changes every 2 batches


def test_one_epoch_is_the_textbook_loop():
    """model.train(); per batch: zero_grad, forward, cross-entropy, backward, step, scheduler step.
    BatchNorm and dropout make train mode visible; a model left in eval mode must be switched."""
    torch.manual_seed(0)
    model = build_model("simple_nn_bn", in_chans=1, input_size=(16, 16), dropout=0.3).eval()
    reference = copy.deepcopy(model)
    batches = [(torch.randn(16, 1, 16, 16), torch.randint(0, 10, (16,))) for _ in range(5)]

    optimizer, scheduler = _sgd_and_schedule(model)
    torch.manual_seed(1)  # the dropout masks
    result = train_one_epoch(model, batches, build_loss("cross_entropy", 10), optimizer, scheduler, FP32,
                             num_classes=10)

    ref_optimizer, ref_scheduler = _sgd_and_schedule(reference)
    torch.manual_seed(1)
    reference.train()
    losses, hits = [], 0
    for x, y in batches:
        ref_optimizer.zero_grad()
        logits = reference(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        ref_optimizer.step()
        ref_scheduler.step()
        losses.append(loss.item())
        hits += int((logits.argmax(1) == y).sum())

    for (name, ours), theirs in zip(model.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6, msg=name)
    assert optimizer.param_groups[0]["lr"] == ref_optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * 0.5**2)
    assert result.first_loss == pytest.approx(losses[0], rel=1e-6)
    assert result.loss == pytest.approx(sum(losses) / len(losses), rel=1e-6)  # equal batches: the plain mean
    assert (result.top1, result.images) == (pytest.approx(hits / 80), 80)
