"""The weight average (train.ema) against the formula by hand, and flip test-time augmentation."""


import pytest
import torch

from cnnlab.data.loader import DeviceLoader
from cnnlab.data.normalize import ChannelStats
from cnnlab.engine.ema import Ema
from cnnlab.engine.fit import fit
from cnnlab.engine.losses import build_loss
from cnnlab.engine.loop import evaluate
from cnnlab.engine.precision import resolve_precision
from cnnlab.engine.progress import Progress
from cnnlab.run import RunDir
from cnnlab.run.restore import restore_model
from tests.conftest import fit_killed_after, with_overrides

QUIET = Progress(quiet=True)
FP32 = resolve_precision("cpu", "fp32", False)


@pytest.mark.parametrize("warmup", [False, True])
def test_the_average_follows_the_formula_every_k_steps(warmup):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    ema = Ema(model, decay=0.9, every=2, warmup=warmup)
    expected, n = None, 0
    for step in range(1, 12):
        model(torch.randn(16, 4)).pow(2).mean().backward()  # also moves the batch-norm statistics
        opt.step()
        opt.zero_grad()
        ema.update(model)
        if step % 2 == 0:  # the first update copies, the n-th after it is avg = d avg + (1 - d) w
            now = {k: v.detach().clone().float() for k, v in model.state_dict().items()
                   if v.dtype.is_floating_point}
            d = min(0.9, (1 + n) / (10 + n)) if warmup else 0.9  # timm's warmup: 2/11, 3/12, ... up to 0.9
            expected = now if expected is None else {k: d * expected[k] + (1 - d) * now[k] for k in now}
            n += 1
    averaged = ema.module.state_dict()
    for key, value in expected.items():
        torch.testing.assert_close(averaged[key], value, rtol=1e-6, atol=1e-6)
    assert not torch.equal(averaged["0.weight"], model.state_dict()["0.weight"])
    assert averaged["1.num_batches_tracked"] == 10 and model.state_dict()["1.num_batches_tracked"] == 11  # copied at step 10


def test_flip_tta_averages_the_logits_of_the_image_and_its_mirror():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 5)).eval()
    images = torch.randint(0, 256, (10, 1, 8, 8), dtype=torch.uint8)
    labels = torch.randint(0, 5, (10,))
    loader = DeviceLoader(images, labels, batch_size=4, stats=ChannelStats([0.5], [0.25]))
    x = (images.float() / 255 - 0.5) / 0.25
    with torch.no_grad():
        logits = (model(x) + model(torch.flip(x, dims=[3]))) / 2
    loss_fn = build_loss("cross_entropy", 5)
    result = evaluate(model, loader, loss_fn, FP32, num_classes=5, tta="flip")
    assert result.loss == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-5)
    assert result.top1 == pytest.approx((logits.argmax(1) == labels).float().mean().item())
    plain = evaluate(model, loader, loss_fn, FP32, num_classes=5)
    assert plain.loss != pytest.approx(result.loss)


def test_a_run_with_ema_and_tta_saves_the_average_and_resumes_exactly(tiny_config):
    config = with_overrides(tiny_config, "train.epochs=3", "train.ema={decay: 0.95, every: 2}", "train.tta=flip",
                            "model.options={batchnorm: true}", "train.channels_last=false")
    straight = fit(config, progress=QUIET)

    killed = fit_killed_after(config, 2)
    resumed = fit(config, progress=QUIET, resume=str(killed))
    assert [r.without_times() for r in RunDir(straight.run_dir).metrics()] == \
        [r.without_times() for r in RunDir(killed).metrics()]
    assert resumed.test == straight.test
    # The checkpoint holds the average as its weights and the trained weights in its state.
    run = RunDir(straight.run_dir)
    checkpoint = run.checkpoints.load(3)
    assert checkpoint.state["ema"]["steps"] > 0
    differs = [k for k in checkpoint.weights if not torch.equal(checkpoint.weights[k],
                                                                checkpoint.state["train_weights"][k])]
    assert differs  # the average is not the last step's weights
    restored = restore_model(straight.run_dir, "last")
    assert all(torch.equal(v, checkpoint.weights[k]) for k, v in restored.state_dict().items())
