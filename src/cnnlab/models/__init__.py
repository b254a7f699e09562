"""Model zoo: importing this package registers every model file's entry points."""

from cnnlab.models import (  # noqa: F401  (registration)
    alexnet_small,
    convnet,
    enpm_open,
    fastnet,
    lenet,
    mlp,
    resnet_cifar,
    simple_nn,
    simplenet,
    torchvision_nets,
    vgg,
)
from cnnlab.models.fully_conv import FullyConvNet, to_fully_conv
from cnnlab.models.registry import MODELS, FitsToData, ModelEntry, build_model, count_parameters, register_model
from cnnlab.models.weights import load_matching_state_dict, read_state_dict

__all__ = [
    "MODELS",
    "FitsToData",
    "FullyConvNet",
    "ModelEntry",
    "build_model",
    "count_parameters",
    "load_matching_state_dict",
    "read_state_dict",
    "register_model",
    "to_fully_conv",
]
