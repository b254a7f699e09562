"""Weight files: reading, loading with shape checks, and the torchvision nets' ``weights`` option."""

from __future__ import annotations

import urllib.error

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from cnnlab.cli.main import main
from cnnlab.errors import CnnlabError
from cnnlab.models import build_model, load_matching_state_dict, read_state_dict


def test_round_trip_through_pt_and_safetensors(tmp_path):
    torch.manual_seed(0)
    source = build_model("simple_nn_bn").eval()
    x = torch.randn(2, 3, 32, 32)
    torch.save({"model": source.state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")  # a nested checkpoint
    save_file(source.state_dict(), tmp_path / "w.safetensors")
    for path in (tmp_path / "ckpt.pt", tmp_path / "w.safetensors"):
        target = build_model("simple_nn_bn").eval()
        load_matching_state_dict(target, read_state_dict(path), source=str(path))
        assert torch.equal(target(x), source(x))


def test_a_data_parallel_checkpoint_loads_without_its_module_prefix(tmp_path):
    torch.manual_seed(0)
    source = build_model("simple_nn").eval()
    torch.save({"state_dict": torch.nn.DataParallel(source).state_dict()}, tmp_path / "dp.pt")  # keys "module.*"
    state = read_state_dict(tmp_path / "dp.pt")
    assert list(state) == list(source.state_dict())
    target = build_model("simple_nn").eval()
    load_matching_state_dict(target, state)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(target(x), source(x))


def test_mismatched_shapes_are_listed_in_one_line():
    state = build_model("convnet", num_classes=10).state_dict()
    with pytest.raises(CnnlabError) as err:
        load_matching_state_dict(build_model("convnet", num_classes=15), state, source="checkpoint 'c.pt'")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("checkpoint 'c.pt' does not match the model: shape mismatch in 2 tensors: ")
    assert "classifier.fc5.weight (10, 1000) in the file vs (15, 1000) in the model" in message
    assert "classifier.fc5.bias (10,) in the file vs (15,) in the model" in message


def test_missing_and_unexpected_keys():
    state = build_model("convnet").state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["features.conv1.bias"]
    with pytest.raises(CnnlabError, match="missing keys: features.conv1.bias; unexpected keys: extra.weight"):
        load_matching_state_dict(build_model("convnet"), state)
    result = load_matching_state_dict(build_model("convnet"), state, strict=False)
    assert result.missing == ["features.conv1.bias"] and result.unexpected == ["extra.weight"]


def test_unreadable_files(tmp_path):
    with pytest.raises(CnnlabError, match="does not exist"):
        read_state_dict(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CnnlabError, match="cannot read weights file"):
        read_state_dict(tmp_path / "junk.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CnnlabError, match="holds no state dict"):
        read_state_dict(tmp_path / "list.pt")


@pytest.fixture(scope="module")
def imagenet_layout_file(tmp_path_factory):
    """A torchvision resnet18 state dict in the ImageNet layout (3 channels, 1,000 classes)."""
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    model = torchvision.models.resnet18(weights=None)
    torch.save(model.state_dict(), path)
    return path, model.eval()


def test_imagenet_layout_weights_are_loaded_before_the_new_head(imagenet_layout_file):
    path, reference = imagenet_layout_file
    model = build_model("tv_resnet18", num_classes=15, input_size=(64, 64), weights=str(path))
    assert model.fc.out_features == 15
    assert torch.equal(model.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)


def test_gray_input_conv_keeps_the_pretrained_response(imagenet_layout_file):
    """A one-channel image gets the logits the RGB net gives that image repeated over R, G, B."""
    path, reference = imagenet_layout_file
    gray = build_model("tv_resnet18", in_chans=1, input_size=(64, 64), weights=str(path)).eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(gray(x), reference(x.repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-4)


def test_gray_input_keeps_the_first_convs_pretrained_bias(tmp_path):
    """AlexNet's first conv has a bias (ResNet's has none), CS 6476's gray scenes go through it."""
    torch.manual_seed(1)
    reference = torchvision.models.alexnet(weights=None).eval()
    torch.nn.init.uniform_(reference.features[0].bias, 0.5, 1.0)  # well away from a fresh layer's bias
    torch.save(reference.state_dict(), tmp_path / "alexnet.pth")
    gray = build_model("tv_alexnet", in_chans=1, input_size=(64, 64), weights=str(tmp_path / "alexnet.pth")).eval()
    assert torch.equal(gray.features[0].bias, reference.features[0].bias)
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(gray(x), reference(x.repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-4)


def test_finetuned_checkpoint_loads_after_the_head_and_mismatch_is_reported(tmp_path):
    finetuned = build_model("tv_resnet18", num_classes=15, input_size=(64, 64))
    path = tmp_path / "finetuned.pt"
    torch.save(finetuned.state_dict(), path)
    again = build_model("tv_resnet18", num_classes=15, input_size=(64, 64), weights=str(path))
    assert torch.equal(again.fc.weight, finetuned.fc.weight)
    with pytest.raises(CnnlabError, match=r"fc.weight \(15, 512\) in the file vs \(10, 512\) in the model"):
        build_model("tv_resnet18", num_classes=10, input_size=(64, 64), weights=str(path))


def test_cli_reports_a_mismatched_checkpoint_in_one_line(tmp_path, capsys):
    path = tmp_path / "finetuned.pt"
    torch.save(build_model("tv_resnet18", num_classes=15, input_size=(64, 64)).state_dict(), path)
    code = main(["summary", "tv_resnet18", f"weights={path}", "--classes", "10", "--input", "3x64x64"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "fc.weight (15, 512) in the file vs (10, 512) in the model" in err


def test_imagenet_download_failure_is_one_line(monkeypatch):
    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models._api.WeightsEnum, "get_state_dict", offline)
    with pytest.raises(CnnlabError) as err:
        build_model("tv_alexnet", weights="imagenet")
    message = str(err.value)
    assert "\n" not in message
    assert "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" in message
    assert "pass weights=PATH" in message
