#!/usr/bin/env python3
"""FP16 copy of an fp32 causal LM exported like models/austen-lm/model.onnx, for the GPU check's FP16 row.

Usage: python3 scripts/gpu-check/fp16.py in.onnx out.onnx

Every float initializer, Constant and Cast-to-float becomes float16 (values clipped to +-65504, so the attention mask's
-1e9 stays a large negative number rather than -inf), except the rotary angles: everything that feeds a Cos or Sin stays
fp32 (positions near 512 times a frequency lose whole radians in fp16) and their outputs are cast to fp16, as fp16 LLM
exports keep them. The logits are cast back to fp32 so every tool reads them as before. Needs only onnx and numpy (onnx
1.12 on Debian, 1.23 on the GPU machine); no onnxconverter_common.
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FP16_MAX = 65504.0


def _half(tensor):
    values = np.clip(numpy_helper.to_array(tensor), -FP16_MAX, FP16_MAX).astype(np.float16)
    return numpy_helper.from_array(values, tensor.name)


def _rotary_island(graph):
    """Names of the nodes that compute Cos/Sin inputs (and the Cos/Sin nodes): they stay fp32."""
    producer = {out: node for node in graph.node for out in node.output}
    keep, stack = set(), [n for n in graph.node if n.op_type in ("Cos", "Sin")]
    while stack:
        node = stack.pop()
        if node.name in keep:
            continue
        keep.add(node.name)
        stack.extend(producer[i] for i in node.input if i in producer)
    return keep


def convert(model):
    graph = model.graph
    if graph.input and any(i.type.tensor_type.elem_type == TensorProto.FLOAT for i in graph.input):
        raise SystemExit("fp16.py: float graph inputs are not handled (a KV cache?); this converts token-id models only")
    keep = _rotary_island(graph)
    kept_inputs = {i for node in graph.node if node.name in keep for i in node.input}
    for index, tensor in enumerate(graph.initializer):
        if tensor.data_type == TensorProto.FLOAT and tensor.name not in kept_inputs:
            graph.initializer[index].CopyFrom(_half(tensor))
    nodes = []
    for node in graph.node:
        if node.name not in keep:
            for attr in node.attribute:
                if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                    attr.i = TensorProto.FLOAT16
                if node.op_type == "Constant" and attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                    attr.t.CopyFrom(_half(attr.t))
        nodes.append(node)
        if node.op_type in ("Cos", "Sin"):
            wide = node.output[0] + "_fp32"
            nodes.append(helper.make_node("Cast", [wide], [node.output[0]], node.name + "_to_fp16", to=TensorProto.FLOAT16))
            node.output[0] = wide
    for out in graph.output:
        if out.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        narrow = out.name + "_fp16"
        for node in nodes:
            node.output[:] = [narrow if o == out.name else o for o in node.output]
            node.input[:] = [narrow if i == out.name else i for i in node.input]
        nodes.append(helper.make_node("Cast", [narrow], [out.name], out.name + "_to_fp32", to=TensorProto.FLOAT))
    del graph.node[:]
    graph.node.extend(nodes)
    # Recorded intermediate types are fp32 ones; ONNX Runtime infers them again.
    del graph.value_info[:]
    return model


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    model = convert(onnx.load(argv[0]))
    onnx.checker.check_model(model)
    onnx.save(model, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
