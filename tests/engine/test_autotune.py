"""Measured ``auto`` settings: the ISA limits of the environment, the clock, the cache, the run's record."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cnnlab.engine.autotune import TuneCache, choose, machine_fingerprint, measure, training_step
from cnnlab.engine.fit import fit
from cnnlab.engine.precision import Precision, candidate_settings, cpu_has_native_bf16
from cnnlab.engine.progress import Progress
from cnnlab.models import build_model
from cnnlab.run import RunDir
from tests.conftest import with_overrides

QUIET = Progress(quiet=True)
CPU = torch.device("cpu")
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def in_subprocess(code: str, **env) -> str:
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_bf16_is_native_only_where_torch_and_onednn_may_use_it():
    hardware = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert cpu_has_native_bf16() == hardware
    probe = "from cnnlab.engine.precision import cpu_has_native_bf16 as f; print(f())"
    # Either variable alone makes an AVX-512 BF16 CPU an AVX2 one, as PyTorch and oneDNN then run it.
    assert in_subprocess(probe, ATEN_CPU_CAPABILITY="avx2") == "False"
    assert in_subprocess(probe, ONEDNN_MAX_CPU_ISA="AVX2") == "False"
    assert in_subprocess(probe, ONEDNN_MAX_CPU_ISA="AVX512_CORE") == "False"  # AVX-512 without its BF16 part
    assert in_subprocess(probe, ONEDNN_MAX_CPU_ISA="AVX512_CORE_BF16") == str(hardware)
    # ...and `auto` then offers fp32 alone.
    offer = "from cnnlab.engine.precision import candidate_settings as c; print([p.label for p in c('cpu', 'auto')])"
    assert in_subprocess(offer, **AVX2) == "['fp32 channels_last', 'fp32 NCHW']"


def test_candidates_follow_the_recipe():
    assert [c.label for c in candidate_settings("cpu", "fp32", "auto")] == ["fp32 channels_last", "fp32 NCHW"]
    assert [c.label for c in candidate_settings("cpu", "bf16", False)] == ["bf16 NCHW"]
    offered = {c.name for c in candidate_settings("cpu", "auto", True)}
    assert offered == ({"bf16", "fp32"} if cpu_has_native_bf16() else {"fp32"})
    assert not any(c.compile for c in candidate_settings("cpu", "auto", "auto", "auto"))  # slower on CPUs
    assert [c.compile for c in candidate_settings("cpu", "fp32", False, True)] == [True]


def sleeper(seconds_by_label: dict[str, float]):
    """A build_step whose steps take known times: real sleeps, so the clock is really read."""
    return lambda setting: (lambda: time.sleep(seconds_by_label[setting.label]))


FAST, SLOW = Precision(CPU, None, True), Precision(CPU, None, False)


def test_the_fastest_candidate_wins_and_a_slow_one_is_given_up():
    timings = measure([SLOW, FAST], sleeper({"fp32 NCHW": 0.003, "fp32 channels_last": 0.002}), batch=64)
    assert [t.label for t in timings] == ["fp32 NCHW", "fp32 channels_last"]
    assert timings[0].step_s >= 0.003 and timings[1].step_s < timings[0].step_s
    assert timings[1].images_per_s == pytest.approx(64 / timings[1].step_s)
    # Fastest first, then a candidate 40x slower is dropped after two clocked steps, not timed for a window.
    start = time.perf_counter()
    timings = measure([FAST, SLOW], sleeper({"fp32 NCHW": 0.04, "fp32 channels_last": 0.001}), batch=64)
    assert timings[1].step_s is None and timings[1].images_per_s is None
    assert time.perf_counter() - start < 0.3 + 4 * 0.04 + 0.5  # FAST's window, SLOW's 2 warm-up + 2 steps


def test_a_slow_start_of_the_process_falls_on_every_candidate_alike():
    """The process's first steps run slow (the allocator's first pages): measured one candidate
    after another, the first candidate took all 30 of its clocked steps in them and lost to a slower one."""
    calls = []

    def build(setting):
        own = {"fp32 channels_last": 0.002, "fp32 NCHW": 0.003}[setting.label]  # channels_last is faster

        def step():
            calls.append(setting.label)
            time.sleep(own + (0.008 if len(calls) <= 40 else 0.0))  # the process's first 40 steps: +8 ms
        return step

    timings = measure([FAST, SLOW], build, batch=64)
    assert calls[:4] == ["fp32 channels_last", "fp32 NCHW"] * 2  # warm-up in turns, then clocked in turns
    assert timings[0].step_s < timings[1].step_s


@pytest.mark.parametrize("channels_last", [False, True])
def test_each_candidate_is_timed_on_its_own_layout_even_with_one_channel(channels_last):
    """A one-channel batch stored channels-last (as Fashion-MNIST's is) counts as contiguous in both
    layouts; the conv must still see the strides the loader will give it."""
    seen = []
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    model(torch.zeros(1, 1, 8, 8))
    model[0].register_forward_pre_hook(lambda m, args: seen.append(args[0].stride()))
    images = torch.randn(4, 8, 8, 1).permute(0, 3, 1, 2)  # (4, 1, 8, 8), strides (64, 1, 8, 1)
    step = training_step(model, Precision(CPU, None, channels_last), torch.nn.functional.cross_entropy,
                         lambda params: torch.optim.SGD(params, lr=0.1), images, torch.tensor([0, 1, 0, 1]))
    step()
    expected = torch.empty(4, 1, 8, 8, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    assert seen == [expected.stride()] == [(64, 1, 8, 1) if channels_last else (64, 64, 8, 1)]


def test_a_choice_is_cached_per_machine_and_measured_again_elsewhere(tmp_path):
    cache = TuneCache(tmp_path / "autotune.json")
    build = sleeper({"fp32 NCHW": 0.003, "fp32 channels_last": 0.001})
    first = choose([FAST, SLOW], build, batch=32, key="k", cache=cache)
    assert first.source == "measured" and first.precision == FAST and "cached in" in first.cache_note

    def must_not_measure(setting):
        raise AssertionError("a cached choice was measured again")

    again = choose([FAST, SLOW], must_not_measure, batch=32, key="k", cache=cache)
    assert again.source == "cache" and again.precision == FAST and again.timings == first.timings
    # The same entry from another torch, or another CPU, is never trusted.
    data = json.loads(cache.path.read_text())
    data["entries"]["k"]["machine"]["torch"] = "1.13.0"
    cache.path.write_text(json.dumps(data))
    remeasured = choose([FAST, SLOW], build, batch=32, key="k", cache=cache)
    assert remeasured.source == "measured"
    assert f"torch '1.13.0' -> '{torch.__version__}'" in remeasured.cache_note
    data = json.loads(cache.path.read_text())
    data["entries"]["k"]["machine"]["cpu"] = "Some Other CPU"
    cache.path.write_text(json.dumps(data))
    assert "cpu 'Some Other CPU' ->" in choose([FAST, SLOW], build, batch=32, key="k", cache=cache).cache_note
    cache.path.write_text("{not json")  # a damaged cache is an empty one
    assert choose([FAST, SLOW], build, batch=32, key="k", cache=cache).source == "measured"


def test_the_fingerprint_reads_the_isa_limits_of_the_environment():
    here = machine_fingerprint(CPU)
    there = json.loads(in_subprocess("import json, torch; from cnnlab.engine.autotune import machine_fingerprint as m;"
                                     " print(json.dumps(m(torch.device('cpu'))))", **AVX2))
    assert there["aten_cpu_capability"] == "AVX2" and there["onednn_max_cpu_isa"] == "AVX2"
    assert {k: v for k, v in here.items() if k not in ("aten_cpu_capability", "onednn_max_cpu_isa")} == \
        {k: v for k, v in there.items() if k not in ("aten_cpu_capability", "onednn_max_cpu_isa")}


def test_measuring_leaves_the_model_and_every_random_stream_as_they_were():
    torch.manual_seed(0)
    model = build_model("convnet_dropout", in_chans=1, num_classes=10, input_size=(16, 16))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(8, 1, 16, 16), torch.randint(0, 10, (8,))
    rng = torch.get_rng_state()
    build = lambda s: training_step(model, s, torch.nn.functional.cross_entropy,
                                    lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9), x, y)
    timings = measure(candidate_settings("cpu", "fp32", "auto"), build, batch=8)
    assert all(t.step_s is not None or t.label == "fp32 NCHW" for t in timings)
    assert torch.equal(torch.get_rng_state(), rng)  # dropout drew from a forked stream
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # steps ran on copies


def test_a_run_records_its_choice_and_the_next_run_takes_it_from_the_cache(tiny_config, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(tmp_path / "cache"))  # empty, whatever ran before
    config = with_overrides(tiny_config, "train.channels_last=auto", "train.epochs=1")
    first = fit(config, progress=QUIET)
    assert first.settings["source"] == "measured" and len(first.settings["timings"]) == 2
    recorded = RunDir(first.run_dir).settings()
    assert recorded == first.settings and recorded["precision"] == "fp32"
    second = fit(config, progress=QUIET)
    assert second.settings["source"] == "cache"
    assert {k: second.settings[k] for k in ("precision", "channels_last")} == \
        {k: first.settings[k] for k in ("precision", "channels_last")}
    # Whatever the cache held, the same recipe trained the same way: byte-identical weights.
    a, b = RunDir(first.run_dir).checkpoints, RunDir(second.run_dir).checkpoints
    assert a.path(1).read_bytes() == b.path(1).read_bytes()


def test_explicit_settings_are_used_without_measuring(tiny_config):
    summary = fit(with_overrides(tiny_config, "train.channels_last=false", "train.epochs=1"), progress=QUIET)
    assert summary.settings["source"] == "recipe" and summary.settings["timings"] == []
    assert summary.device["precision"] == "fp32" and summary.device["channels_last"] is False
