"""Post-training static int8 quantization of a run's model, its saved form and its x86 lowering.

Why this flow: PyTorch's eager-mode quantization (``torch.ao.quantization``) is deprecated in
favour of torchao's PT2E flow, which PyTorch's quantization docs recommend for x86 CPUs:
``torch.export`` captures the graph, ``prepare_pt2e`` with ``X86InductorQuantizer`` folds batch
norm into the convolutions and inserts observers (per-channel symmetric int8 weights,
per-tensor affine uint8 activations from a histogram), a few training batches calibrate them,
and ``convert_pt2e`` gives a graph of quantize/dequantize pairs around fp32 ops. That graph runs
fast only once lowered: ``torch.compile`` (Inductor, with freezing) or ``lower_to_x86`` below,
which turns each dq -> conv/linear -> q pattern into oneDNN's int8 ``qconv``/``qlinear``
kernels (VNNI dot products where the CPU has them) and runs without compiling.

The saved form is a weights file, as the run's checkpoints are: ``quantized/int8.safetensors``
holds every tensor the converted graph reads (int8 weights, fp32 biases, per-channel scales)
and, in its metadata, each activation's scale and zero point. ``load_quantized`` rebuilds the
graph from the run's own architecture by the same flow and puts these values in, so the file
carries no graph text (a ``.pt2`` program's graph alone is ~70 KB, more than vgg_mini's int8
weights).
"""

from __future__ import annotations

import json
import logging
import operator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import CnnlabError

FORMAT = "cnnlab-pt2e-int8"
FILE = "quantized/int8.safetensors"
# The per-tensor activation quantize/dequantize ops whose scale and zero point are literal arguments.
_PER_TENSOR = ("quantize_per_tensor", "dequantize_per_tensor")


def _pt2e():
    """torchao's PT2E entry points (imported on use: torchao takes a second to import)."""
    pytree = logging.getLogger("torch.utils._pytree")  # torchao's import logs a deprecation of torch's, per process
    level = pytree.level
    pytree.setLevel(logging.ERROR)
    try:
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as x86
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    except ImportError as err:
        raise CnnlabError(f"int8 quantization needs torchao ({err}); install it with "
                          "'pip install torchao'") from err
    finally:
        pytree.setLevel(level)
    return x86, prepare_pt2e, convert_pt2e


def _batch_dim() -> tuple[dict, ...]:
    return ({0: torch.export.Dim.DYNAMIC},)  # any batch size: batch 1 latency, batch 256 throughput


def export_graph(model: nn.Module, example: torch.Tensor) -> torch.fx.GraphModule:
    """The model captured by ``torch.export`` with a dynamic batch; a layer it cannot capture is named."""
    from cnnlab.analysis.export import capture_reason, describe_layer, failing_layer, quiet

    try:
        with quiet():
            return torch.export.export(model.eval(), (example,), dynamic_shapes=_batch_dim()).module()
    except Exception as err:  # torch.export raises many kinds; each becomes one line naming the layer
        raise CnnlabError(f"cannot quantize {describe_layer(model, failing_layer(err, model))}: torch.export "
                          f"cannot capture it: {capture_reason(err)}") from err


def quantize_model(model: nn.Module, example: torch.Tensor, calibration: list[torch.Tensor]) -> torch.fx.GraphModule:
    """The converted int8 graph (quantize/dequantize pairs around fp32 ops) of a fp32 ``model``.

    ``example`` (2, C, H, W) fixes the input; ``calibration`` is a list of (B, C, H, W) normalized
    training batches the observers see.
    """
    x86, prepare_pt2e, convert_pt2e = _pt2e()
    quantizer = x86.X86InductorQuantizer()
    quantizer.set_global(x86.get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(export_graph(model, example), quantizer)
    with torch.no_grad():
        for batch in calibration:
            prepared(batch)
    converted = convert_pt2e(prepared)
    _drop_unused(converted)
    return converted


def _drop_unused(graph: torch.fx.GraphModule) -> None:
    """Remove the fp32 parameters the converted graph no longer reads (its int8 copies replace them)."""
    used = {n.target for n in graph.graph.nodes if n.op == "get_attr"}
    for name, _ in list(graph.named_parameters()) + list(graph.named_buffers()):
        if name not in used:
            owner, _, attr = name.rpartition(".")
            delattr(graph.get_submodule(owner) if owner else graph, attr)


def _activation_nodes(graph: torch.fx.GraphModule) -> list[torch.fx.Node]:
    return [n for n in graph.graph.nodes if any(_is_op(n, name) for name in _PER_TENSOR)]


def layer_report(graph: torch.fx.GraphModule) -> dict:
    """Which convolutions and linear layers run in int8 and which stay fp32 (the quantizer leaves
    layers it has no int8 pattern for in fp32 rather than failing)."""
    ops = {"aten.conv2d.default": "conv", "aten.linear.default": "linear"}
    quantized, kept = [], []
    for node in graph.graph.nodes:
        if node.op == "call_function" and str(node.target) in ops:
            layer = _layer_name(node)
            weight = node.args[1]
            is_int8 = getattr(weight, "op", "") == "call_function" and "dequantize" in str(weight.target)
            (quantized if is_int8 else kept).append(layer)
    return {"int8": quantized, "fp32": kept}


def _layer_name(node: torch.fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return list(stack.values())[-1][0] if stack else node.name


def quantized_state(graph: torch.fx.GraphModule) -> tuple[dict[str, torch.Tensor], dict[str, list[float]]]:
    """Every tensor the converted graph reads, by attribute name, and each activation's
    [scale, zero point] by node name."""
    tensors = {n.target: getattr_path(graph, n.target).detach().contiguous()
               for n in graph.graph.nodes if n.op == "get_attr"}
    qparams = {n.name: [float(n.args[1]), int(n.args[2])] for n in _activation_nodes(graph)}
    return tensors, qparams


def getattr_path(module: nn.Module, target: str) -> torch.Tensor:
    owner, _, attr = target.rpartition(".")
    return getattr(module.get_submodule(owner) if owner else module, attr)


def save_quantized(graph: torch.fx.GraphModule, meta: dict) -> bytes:
    """The bytes of the int8 weights file (``meta``: checkpoint, epoch, versions); the caller writes them."""
    from safetensors.torch import save

    tensors, qparams = quantized_state(graph)
    metadata = {"format": FORMAT, "qparams": json.dumps(qparams), **{k: str(v) for k, v in meta.items()}}
    return save(tensors, metadata=metadata)


def apply_state(graph: torch.fx.GraphModule, tensors: dict[str, torch.Tensor], qparams: dict[str, list[float]],
                source: str) -> None:
    """Put saved values into a graph rebuilt by ``quantize_model``; a graph of another shape is refused."""
    targets = [n.target for n in graph.graph.nodes if n.op == "get_attr"]
    nodes = _activation_nodes(graph)
    if sorted(targets) != sorted(tensors) or sorted(n.name for n in nodes) != sorted(qparams):
        raise CnnlabError(f"{source} does not fit this run's model as this torch/torchao quantizes it; "
                          "run 'cnnlab quantize' again")
    for target in targets:
        current, saved = getattr_path(graph, target), tensors[target]
        if current.shape != saved.shape or current.dtype != saved.dtype:
            raise CnnlabError(f"{source}: tensor {target} is {tuple(saved.shape)} {saved.dtype}, the model's "
                              f"is {tuple(current.shape)} {current.dtype}; run 'cnnlab quantize' again")
        with torch.no_grad():
            current.copy_(saved)
    for node in nodes:
        scale, zero_point = qparams[node.name]
        node.args = (node.args[0], scale, int(zero_point), *node.args[3:])
    graph.recompile()


def lower_to_x86(graph: torch.fx.GraphModule, example: torch.Tensor) -> torch.fx.GraphModule:
    """The converted graph with oneDNN int8 kernels in place of its dq -> op -> q patterns, any batch.

    As torchao's ``lower_pt2e_quantized_to_x86``, which specializes the graph to the example's
    batch size; here the batch stays dynamic, and ``view`` becomes ``reshape`` because oneDNN's
    int8 convolutions return channels_last tensors that ``flatten``'s view cannot take.
    """
    from torch._export.utils import _is_cia_op
    from torch._inductor.constant_folding import constant_fold
    from torch._inductor.fx_passes.freezing_patterns import freezing_passes

    aten = torch.ops.aten
    table = {op: fn for op, fn in torch.export.default_decompositions().items() if _is_cia_op(op)}
    lowered = torch.export.export(graph, (example,), dynamic_shapes=_batch_dim(), strict=True)
    lowered = lowered.run_decompositions(table).module()
    for node in lowered.graph.nodes:
        if node.target == aten.t.default:
            node.target, node.args = aten.permute.default, (node.args[0], [1, 0])
        elif node.target == aten.view.default:
            node.target = aten.reshape.default
    lowered.recompile()
    with torch.no_grad():
        freezing_passes(lowered, (example,))
        constant_fold(lowered)
    _int8_passthrough(lowered)
    return lowered


def _int8_passthrough(graph: torch.fx.GraphModule) -> None:
    """Run max pooling and reshapes on the uint8 tensors themselves.

    The lowering leaves ``dequantize -> max_pool2d / reshape -> quantize`` with one scale and zero
    point on both sides (Inductor fuses these only when it compiles). Both ops commute with the
    monotonic affine map, so on the uint8 values they give exactly the same numbers without the
    two Python elementwise ops over fp32 activations, which took most of the eager int8 time.
    """
    aten = torch.ops.aten
    pools = {aten.max_pool2d.default, aten.max_pool2d_with_indices.default}
    shapes = {aten.reshape.default, aten.view.default, aten.flatten.using_ints}
    for q in list(graph.graph.nodes):
        if not _is_op(q, "quantize_per_tensor"):
            continue
        node = q.args[0]
        pool = None
        if node.op == "call_function" and node.target is operator.getitem and node.args[1] == 0 \
                and node.args[0].target in pools and len(node.args[0].users) == 1:
            pool, node = node, node.args[0].args[0]  # getitem(max_pool2d_with_indices(dq), 0)
        elif node.op == "call_function" and node.target in shapes | pools and len(node.users) == 1:
            pool, node = node, node.args[0]
        if not _is_op(node, "dequantize_per_tensor") or tuple(node.args[1:]) != tuple(q.args[1:]):
            continue
        if pool is None:  # q(dq(x)) with one scale: x
            q.replace_all_uses_with(node.args[0])
        elif pool.target in shapes:
            pool.replace_input_with(node, node.args[0])
            q.replace_all_uses_with(pool)
        else:
            source = pool.args[0] if pool.target is operator.getitem else pool
            with graph.graph.inserting_after(q):
                pooled = graph.graph.call_function(max_pool_uint8, (node.args[0], *source.args[1:]))
            q.replace_all_uses_with(pooled)
        graph.graph.erase_node(q)
    graph.graph.eliminate_dead_code()
    graph.recompile()


def max_pool_uint8(x: torch.Tensor, *args) -> torch.Tensor:
    """``max_pool2d`` of uint8 (N, C, H, W) values, exact: PyTorch's CPU max pooling takes no uint8
    tensors of this size, and fp32 holds every uint8 value."""
    return torch.nn.functional.max_pool2d(x.float(), *args).to(torch.uint8)


def _is_op(node: torch.fx.Node, name: str) -> bool:
    return node.op == "call_function" and getattr(node.target, "__name__", "").split(".")[0] == name


class Int8Model(nn.Module):
    """The lowered int8 graph as an ordinary module: fp32 (N, C, H, W) in, fp32 logits out.

    The graph is held outside the module tree: a module from ``torch.export`` refuses ``eval()`` and
    ``train()``, which the evaluation and timing code call, and it has no dropout or batch norm
    whose mode matters.
    """

    def __init__(self, graph: torch.fx.GraphModule) -> None:
        super().__init__()
        self.__dict__["graph"] = graph  # not a submodule: eval() and to() do not reach it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.graph(x)


@dataclass
class QuantizedModel:
    """A run's int8 model as saved: the lowered module (fp32 in, fp32 logits out) and its record."""

    module: Int8Model
    meta: dict
    path: Path


def load_quantized(run_path: str | Path) -> QuantizedModel:
    """The int8 model that ``cnnlab quantize`` saved in a run, rebuilt and lowered for this CPU."""
    from safetensors import SafetensorError, safe_open

    from cnnlab.run import RunDir
    from cnnlab.run.restore import restore_model

    run = RunDir.open(run_path)
    path = run.path / FILE
    if not path.is_file():
        raise CnnlabError(f"{run.path} has no int8 model ({FILE}); make it with 'cnnlab quantize {run.path}'")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        qparams = json.loads(meta["qparams"])
    except (SafetensorError, ValueError, KeyError, OSError, RuntimeError) as err:
        raise CnnlabError(f"{path} is not a readable int8 model ({err}); run 'cnnlab quantize' again") from err
    if meta.get("format") != FORMAT:
        raise CnnlabError(f"{path} is not a cnnlab int8 model (format {meta.get('format')!r})")
    C, H, W = run.data_record().image_shape
    model = restore_model(run.path, meta.get("checkpoint", "best"))
    example = torch.zeros(2, C, H, W)
    graph = quantize_model(model, example, [example])  # the graph's shape; the saved values replace its numbers
    apply_state(graph, tensors, qparams, source=str(path))
    return QuantizedModel(Int8Model(lower_to_x86(graph, example)), meta, path)
