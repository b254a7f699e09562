"""Model zoo: importing this package registers every model file's entry points."""

from cnnlab.models import convnet, mlp, resnet_cifar, simple_nn  # noqa: F401  (registration)
from cnnlab.models.registry import MODELS, ModelEntry, build_model, count_parameters, register_model

__all__ = ["MODELS", "ModelEntry", "build_model", "count_parameters", "register_model"]
