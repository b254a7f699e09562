"""Fine-tuning (CS 6476 part 8): start from trained weights, freeze some layers, new head.

``finetune.from`` names the source: a cnnlab run directory (its best checkpoint), a weights
file (.safetensors, or a weights-only torch file), or ``torchvision:NAME`` (alexnet, vgg16,
resnet18) with ImageNet weights from torchvision's hub, or from the file given as the model
option ``weights``. ``finetune.freeze`` lists parameter-name patterns (``features.*``) that
keep their values; only the other parameters reach the optimizer.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

from torch import nn

from cnnlab.config.schema import FinetuneConfig
from cnnlab.errors import CnnlabError
from cnnlab.models import build_model
from cnnlab.models.weights import load_matching_state_dict, read_state_dict
from cnnlab.run import RunDir

TORCHVISION_SOURCES = {"alexnet": "tv_alexnet", "vgg16": "tv_vgg16", "resnet18": "tv_resnet18"}


def head_name(model: nn.Module) -> str:
    """The classifier: the last Linear (or 1x1 Conv2d of a fully-convolutional net) registered."""
    heads = [name for name, m in model.named_modules()
             if isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1))]
    if not heads:
        raise CnnlabError(f"{type(model).__name__} has no Linear layer to replace as the new head")
    return heads[-1]


def _source_weights(source: str, model_name: str) -> tuple[dict, str]:
    """The state dict a cnnlab source names (a run's best checkpoint, or a file), and a description."""
    path = Path(source)
    if path.is_dir():
        run = RunDir.open(path)
        used = run.config_dict().get("model", {}).get("name")
        if used != model_name:
            raise CnnlabError(f"finetune.from run {path} trained model '{used}'; set model.name={used}")
        return run.checkpoints.weights("best"), f"the best checkpoint of {path}"
    return read_state_dict(path), f"checkpoint '{path}'"


def freeze(model: nn.Module, patterns: list[str]) -> list[str]:
    """Set ``requires_grad=False`` on parameters matching any pattern; returns their names.

    A batch-norm layer whose parameters are all frozen also keeps its running statistics
    (the engine leaves it in eval mode while training), so frozen features stay frozen.
    """
    names = [name for name, _ in model.named_parameters()]
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
            tops = sorted({name.split(".")[0] for name in names})
            raise CnnlabError(f"finetune.freeze pattern '{pattern}' matches no parameter "
                              f"(top-level modules: {', '.join(tops)})")
    frozen = []
    for name, param in model.named_parameters():
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            param.requires_grad_(False)
            frozen.append(name)
    if len(frozen) == len(names):
        raise CnnlabError("finetune.freeze freezes every parameter: nothing would train")
    return frozen


def finetune_model(name: str, options: dict[str, Any], finetune: FinetuneConfig, *, in_chans: int,
                   num_outputs: int, input_size: tuple[int, int]) -> nn.Module:
    """Build ``name`` for the new task, load the source weights (all but the head), then freeze."""
    source = finetune.source
    if source.startswith("torchvision:"):
        arch = source.split(":", 1)[1]
        if arch not in TORCHVISION_SOURCES:
            raise CnnlabError(f"finetune.from: unknown torchvision net '{arch}' "
                              f"(valid: {', '.join('torchvision:' + a for a in TORCHVISION_SOURCES)})")
        if name != TORCHVISION_SOURCES[arch]:
            raise CnnlabError(f"finetune.from={source} needs model.name={TORCHVISION_SOURCES[arch]}")
        options = {"weights": "imagenet", **options}  # the builder loads them and fits head and first conv
        model = build_model(name, in_chans=in_chans, num_classes=num_outputs, input_size=input_size, **options)
    else:
        model = build_model(name, in_chans=in_chans, num_classes=num_outputs, input_size=input_size, **options)
        state, what = _source_weights(source, name)
        if finetune.new_head:  # the new head keeps its fresh initialisation
            head = head_name(model)
            own = model.state_dict()
            state = {**state, **{k: own[k] for k in own if k.startswith(head + ".")}}
        load_matching_state_dict(model, state, source=what)
    freeze(model, finetune.freeze)
    return model


def set_train_mode(model: nn.Module) -> None:
    """``model.train()``, except frozen batch-norm layers (every parameter fixed), which keep their
    running statistics: frozen features stay frozen."""
    model.train()
    for module in model.modules():
        params = list(module.parameters(recurse=False))
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and params and not any(p.requires_grad for p in params):
            module.eval()
