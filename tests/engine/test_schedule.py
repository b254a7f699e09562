"""Our per-batch schedules against torch's own schedulers stepped the same way."""
import pytest
import torch

from cnnlab.engine.schedule import build_schedule
from cnnlab.errors import CnnlabError

EPOCHS, STEPS = 6, 5  # epochs x batches per epoch


def _lrs(scheduler, optimizer, steps):
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def _opt(lr=0.1):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def test_step_matches_torch_steplr_stepped_per_epoch():
    opt = _opt()
    ours = _lrs(build_schedule("step", opt, epochs=EPOCHS, steps_per_epoch=STEPS, step_size=2, gamma=0.5), opt,
                EPOCHS * STEPS)
    ref_opt = _opt()
    ref = torch.optim.lr_scheduler.StepLR(ref_opt, step_size=2, gamma=0.5)
    theirs = []
    for _ in range(EPOCHS):
        theirs += [ref_opt.param_groups[0]["lr"]] * STEPS
        ref_opt.step()
        ref.step()
    assert ours == pytest.approx(theirs, rel=1e-12)


def test_exponential_matches_torch_per_epoch():
    opt = _opt()
    ours = _lrs(build_schedule("exponential", opt, epochs=EPOCHS, steps_per_epoch=STEPS, gamma=0.9), opt,
                EPOCHS * STEPS)
    assert ours[::STEPS] == pytest.approx([0.1 * 0.9**e for e in range(EPOCHS)], rel=1e-12)


def test_cosine_matches_torch_cosine_annealing_per_batch():
    opt = _opt()
    ours = _lrs(build_schedule("cosine", opt, epochs=EPOCHS, steps_per_epoch=STEPS), opt, EPOCHS * STEPS)
    ref_opt = _opt()
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(ref_opt, T_max=EPOCHS * STEPS)
    assert ours == pytest.approx(_lrs(ref, ref_opt, EPOCHS * STEPS), rel=1e-9, abs=1e-12)


def test_cosine_floor_is_torchs_eta_min():
    opt = _opt()
    ours = _lrs(build_schedule("cosine", opt, epochs=EPOCHS, steps_per_epoch=STEPS, min_lr=0.2), opt, EPOCHS * STEPS + 3)
    ref_opt = _opt()
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(ref_opt, T_max=EPOCHS * STEPS, eta_min=0.2 * 0.1)  # min_lr x lr
    theirs = _lrs(ref, ref_opt, EPOCHS * STEPS + 1)
    assert ours[: EPOCHS * STEPS + 1] == pytest.approx(theirs, rel=1e-9, abs=1e-12)
    assert ours[-3:] == pytest.approx([0.02] * 3)  # past the end it stays at the floor (torch's would rise again)


def test_onecycle_shape():
    total = EPOCHS * STEPS
    opt = _opt(lr=1.0)
    lrs = _lrs(build_schedule("onecycle", opt, epochs=EPOCHS, steps_per_epoch=STEPS, pct_start=0.3,
                              div_factor=10.0, min_lr=0.01), opt, total + 1)
    peak = round(0.3 * total)
    assert lrs[0] == pytest.approx(0.1) and lrs[peak] == pytest.approx(1.0) and lrs[total] == pytest.approx(0.01)
    assert all(a <= b for a, b in zip(lrs[:peak], lrs[1 : peak + 1]))
    assert all(a >= b for a, b in zip(lrs[peak:total], lrs[peak + 1 : total + 1]))


def test_linear_warmup_then_schedule():
    opt = _opt()
    lrs = _lrs(build_schedule("constant", opt, epochs=EPOCHS, steps_per_epoch=STEPS, warmup_epochs=2,
                              warmup_start=0.1), opt, 12)
    assert lrs[0] == pytest.approx(0.01) and lrs[5] == pytest.approx(0.01 + 0.09 * 5 / 10)
    assert lrs[10:] == pytest.approx([0.1, 0.1])


def test_scheduler_state_resumes_the_same_lrs():
    opt = _opt()
    sched = build_schedule("cosine", opt, epochs=EPOCHS, steps_per_epoch=STEPS)
    first = _lrs(sched, opt, 7)
    state = sched.state_dict()
    rest = _lrs(sched, opt, 5)
    opt2 = _opt()
    sched2 = build_schedule("cosine", opt2, epochs=EPOCHS, steps_per_epoch=STEPS)
    sched2.load_state_dict(state)
    opt2.param_groups[0]["lr"] = sched2.get_last_lr()[0]
    assert _lrs(sched2, opt2, 5) == pytest.approx(rest) and len(first) == 7


def test_options_that_do_not_apply_are_refused():
    with pytest.raises(CnnlabError, match="schedule 'cosine' has no option 'gamma'"):
        build_schedule("cosine", _opt(), epochs=2, steps_per_epoch=2, gamma=0.5)
    with pytest.raises(CnnlabError, match="unknown schedule 'cosin'; did you mean 'cosine'"):
        build_schedule("cosin", _opt(), epochs=2, steps_per_epoch=2)
