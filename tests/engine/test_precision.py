import pytest
import torch

from cnnlab.engine.precision import cpu_has_native_bf16, resolve_precision
from cnnlab.errors import CnnlabError


def test_auto_picks_bf16_only_where_the_cpu_has_it():
    p = resolve_precision("cpu", "auto", "auto")
    assert p.dtype == (torch.bfloat16 if cpu_has_native_bf16() else None)
    assert p.channels_last == (p.dtype is not None)


def test_explicit_choices():
    p = resolve_precision("cpu", "fp32", "true")
    assert p.dtype is None and p.channels_last and p.name == "fp32"
    with p.autocast():
        assert not torch.is_autocast_enabled("cpu")
    with resolve_precision("cpu", "bf16", "false").autocast():
        assert torch.is_autocast_enabled("cpu")


@pytest.mark.parametrize("args, message", [
    (("cpu", "fp16", "auto"), "fp16 needs a CUDA device"),
    (("cpu", "half", "auto"), "train.precision must be one of"),
    (("cpu", "fp32", "maybe"), "channels_last must be auto, true or false"),
    (("tpu", "fp32", "auto"), "unknown device 'tpu'"),
])
def test_bad_settings(args, message):
    with pytest.raises(CnnlabError, match=message):
        resolve_precision(*args)
