"""Per-layer summary of a model, as Keras ``model.summary()`` and torchinfo print it.

``summarize`` runs one image through the model with forward hooks on every leaf module, in
execution order (as torchinfo does), and records for each: output shape, parameters (all and
trainable), receptive field size, jump and start (``receptive_field``), and multiply-adds.
Multiply-adds count the products of convolutions (C_out*H_out*W_out*C_in/groups*kh*kw) and
linear layers (in*out); BatchNorm, activations, pooling, dropout and the residual sums are
counted as 0, as the lab reports count them. Activation memory is the bytes of the distinct
tensors the listed layers output for one image (an in-place ReLU shares its input's).
Identity placeholders (a disabled BatchNorm or dropout) are not listed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from cnnlab.analysis.receptive_field import INPUT_FIELD, Field, FieldTracker, layer_field
from cnnlab.models.layers import eval_mode, forward_error


@dataclass
class LayerRow:
    name: str  # dotted module path, e.g. "features.conv1"
    type: str  # class name, e.g. "Conv2d"
    output_shape: tuple[int, ...]  # without the batch dimension: (C, H, W) or (F,)
    params: int
    trainable: int
    field: Field | None  # receptive field of one output unit; None where no rule applies
    macs: int  # multiply-adds for one image


@dataclass
class Summary:
    input_shape: tuple[int, int, int]  # (C, H, W)
    output_shape: tuple[int, ...]
    rows: list[LayerRow]
    params: int
    trainable: int
    macs: int = 0
    activation_bytes: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready form: shapes as lists, fields as {size, jump, start}."""
        out = asdict(self)
        for row in out["rows"]:
            if row["field"] is not None:
                row["field"].pop("flat_from")
        return out


def layer_macs(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    """Multiply-adds of one call of ``module`` for a batch of one."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return output[0].numel() * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return output[0].numel() * module.in_features
    return 0


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if name and not list(m.children())]


def summarize(model: nn.Module, input_shape: tuple[int, int, int]) -> Summary:
    """Run one zero image of shape ``input_shape`` (C, H, W) through ``model`` and tabulate its layers.

    The model is put in eval mode for the pass (BatchNorm1d cannot take a batch of one in
    training); each module gets its own mode back after. An input too small for the net
    raises a ``CnnlabError`` that names the layer whose output would be empty.
    """
    rows: list[LayerRow] = []
    entered: list[str] = []
    seen_storage: set[int] = set()
    totals = {"macs": 0, "bytes": 0}
    tracker = FieldTracker()

    def on_output(name: str, module: nn.Module, inputs: tuple, output) -> None:
        if not isinstance(output, torch.Tensor) or not inputs or not isinstance(inputs[0], torch.Tensor):
            return
        source = tracker.field_of(inputs[0])
        result = layer_field(module, source, inputs[0].shape, output.shape) if source else None
        tracker.mark(output, result)
        if isinstance(module, nn.Identity):
            return
        macs = layer_macs(module, inputs, output)
        if output.data_ptr() not in seen_storage:
            seen_storage.add(output.data_ptr())
            totals["bytes"] += output[0].numel() * output.element_size()
        totals["macs"] += macs
        params = list(module.parameters(recurse=False))
        rows.append(LayerRow(
            name=name,
            type=type(module).__name__,
            output_shape=tuple(output.shape[1:]),
            params=sum(p.numel() for p in params),
            trainable=sum(p.numel() for p in params if p.requires_grad),
            field=result,
            macs=macs,
        ))

    hooks = []
    for name, module in _leaves(model):
        hooks.append(module.register_forward_pre_hook(lambda m, args, name=name: entered.append(name)))
        hooks.append(module.register_forward_hook(lambda m, args, out, name=name: on_output(name, m, args, out)))
    C, H, W = input_shape
    try:
        with torch.no_grad(), eval_mode(model), tracker:
            x = torch.zeros(1, C, H, W)
            tracker.mark(x, INPUT_FIELD)
            out = model(x)
    except RuntimeError as err:
        raise forward_error(err, entered[-1] if entered else None, (C, H, W)) from err
    finally:
        for hook in hooks:
            hook.remove()
    params = {id(p): p for p in model.parameters()}.values()  # shared weights counted once
    return Summary(
        input_shape=(C, H, W),
        output_shape=tuple(out.shape[1:]),
        rows=rows,
        params=sum(p.numel() for p in params),
        trainable=sum(p.numel() for p in params if p.requires_grad),
        macs=totals["macs"],
        activation_bytes=totals["bytes"],
    )


def _axis_text(pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def shape_text(shape: tuple[int, ...]) -> str:
    """(64, 8, 8) -> '64x8x8', as ``--input`` is written."""
    return "x".join(str(s) for s in shape)


def table(summary: Summary) -> tuple[list[str], list[list[str]]]:
    """Headers and one row of strings per layer, for the CLI's table printer."""
    headers = ["Layer", "Type", "Output", "Params", "Trainable", "RF", "Jump", "MACs"]
    body = []
    for row in summary.rows:
        rf = _axis_text(row.field.size) if row.field else "?"
        jump = _axis_text(row.field.jump) if row.field else "?"
        body.append([row.name, row.type, shape_text(row.output_shape), f"{row.params:,}", f"{row.trainable:,}",
                     rf, jump, f"{row.macs:,}"])
    return headers, body


def totals_lines(summary: Summary) -> list[str]:
    """The footer: totals as Keras prints them, plus MACs and activation memory."""
    return [
        f"Input: {shape_text(summary.input_shape)}   Output: {shape_text(summary.output_shape)}",
        f"Total params: {summary.params:,}",
        f"Trainable params: {summary.trainable:,}",
        f"Non-trainable params: {summary.params - summary.trainable:,}",
        f"Multiply-adds (one image): {summary.macs:,} ({summary.macs / 1e6:.2f} M)",
        f"Activation memory (one image): {summary.activation_bytes:,} bytes "
        f"({summary.activation_bytes / 2**20:.2f} MiB)",
    ] + summary.notes
