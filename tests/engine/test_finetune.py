"""Fine-tuning: source weights in, frozen parameters bit-for-bit unchanged, new head trained."""

import pytest
import torch
import torchvision

from cnnlab.engine.fit import fit, setup
from cnnlab.engine.progress import Progress
from cnnlab.errors import CnnlabError
from cnnlab.run import RunDir
from tests.conftest import with_overrides

QUIET = Progress(quiet=True)


@pytest.fixture
def source_run(tiny_config):
    """A 10-class source run: the 'pretraining'."""
    return fit(with_overrides(tiny_config, "model.name=convnet_bn", "model.options={fc_dim: 64}"), progress=QUIET)


def test_frozen_features_stay_bit_identical_and_only_the_rest_is_optimized(tiny_config, source_run):
    run_dir = source_run.run_dir
    tuned = with_overrides(tiny_config, "model.name=convnet_bn", "model.options={fc_dim: 64}", f"finetune.from={run_dir}",
                  "finetune.freeze=['features.*']", "data.classes=[0, 1, 2]")
    session = setup(tuned)
    trainable = [p for p in session.model.parameters() if p.requires_grad]
    assert sum(p.numel() for g in session.optimizer.param_groups for p in g["params"]) == sum(p.numel() for p in trainable)
    summary = fit(tuned, progress=QUIET)
    assert summary.model["trainable_parameters"] == sum(p.numel() for p in trainable) < summary.model["parameters"]
    before = RunDir(run_dir).checkpoints.weights("best")
    after = RunDir(summary.run_dir).checkpoints.weights("last")
    features = [k for k in before if k.startswith("features.")]
    assert features and all(torch.equal(before[k], after[k]) for k in features)  # running stats too
    assert after["classifier.fc5.weight"].shape == (3, 64)  # the new head for three classes
    assert not torch.equal(before["classifier.fc4.weight"], after["classifier.fc4.weight"])


def test_bad_sources_and_patterns(tiny_config, source_run, tmp_path):
    run_dir = source_run.run_dir
    with pytest.raises(CnnlabError, match="trained model 'convnet_bn'; set model.name=convnet_bn"):
        setup(with_overrides(tiny_config, f"finetune.from={run_dir}"))
    with pytest.raises(CnnlabError, match="pattern 'feature.*' matches no parameter"):
        setup(with_overrides(tiny_config, "model.name=convnet_bn", "model.options={fc_dim: 64}", f"finetune.from={run_dir}",
                    "finetune.freeze=['feature.*']"))
    with pytest.raises(CnnlabError, match=r"shape mismatch in .*classifier.fc4.weight \(64, 256\) in the file vs \(32, 256\) in the model"):
        setup(with_overrides(tiny_config, "model.name=convnet_bn", "model.options={fc_dim: 32}", f"finetune.from={run_dir}"))
    with pytest.raises(CnnlabError, match="unknown torchvision net 'lenet'"):
        setup(with_overrides(tiny_config, "finetune.from=torchvision:lenet"))


def test_torchvision_source_reads_the_weights_file_the_model_option_names(tiny_config, tmp_path):
    """finetune.from=torchvision:resnet18 with model.options.weights=PATH loads that file (offline), not the hub."""
    torch.manual_seed(2)
    pretrained = torchvision.models.resnet18(weights=None)
    torch.save(pretrained.state_dict(), tmp_path / "resnet18.pth")
    session = setup(with_overrides(tiny_config, "model.name=tv_resnet18", "finetune.from=torchvision:resnet18",
                                   f"model.options={{weights: {tmp_path / 'resnet18.pth'}}}"))
    assert torch.equal(session.model.layer4[1].conv2.weight, pretrained.layer4[1].conv2.weight)
    assert session.model.fc.out_features == 10 and session.model.conv1.in_channels == 1
