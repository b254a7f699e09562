"""The settings of ``cnnlab scratch train``, importable without NumPy (the CLI reads its defaults)."""

from __future__ import annotations

from dataclasses import dataclass

MODELS = ("fc", "cnn")


@dataclass
class ScratchTrainConfig:
    model: str = "fc"  # fc: FullyConnectedNet, cnn: ThreeLayerConvNet
    dataset: str = "fashion_mnist"
    hidden: tuple[int, ...] = (256, 128)  # fc: hidden widths; cnn: one number, the hidden affine's width
    norm: str | None = None  # None, batchnorm or layernorm (cnn: None or batchnorm, spatial)
    dropout: float = 0.0  # probability of dropping a hidden unit, torch's p
    filters: int = 32  # cnn: number of conv filters
    filter_size: int = 5  # cnn: odd; the conv pads to keep the size
    update: str = "adam"
    lr: float = 1e-3
    lr_decay: float = 1.0  # lr multiplier after each epoch
    epochs: int = 10
    batch_size: int = 128
    reg: float = 0.0  # L2 strength, 0.5 * reg * sum W^2
    weight_scale: float | str = "he"  # std of the initial weights, or 'he': sqrt(2 / fan_in)
    val_size: float = 5000  # held out of the training part: a count, or a fraction below 1
    train_limit: int | None = None  # use only this many training images (quick runs, tests)
    seed: int = 0  # split, initial weights, dropout masks and shuffling
    dtype: str = "float32"
    threads: int = 1  # BLAS threads; 0 leaves NumPy's default (threads.py says why 1)
    output_dir: str = "runs"
    name: str | None = None  # run folder prefix; default scratch-<model>
