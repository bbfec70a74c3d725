#!/usr/bin/python3
"""Tiny numpy interpreter for the standard ONNX ops that model.onnx uses, to check the
exported graph numerically where neither onnxruntime nor onnx.reference (onnx >= 1.13)
is available.  Not a general ONNX runtime: it supports exactly the op set emitted by
export_onnx.py (opset 17) and raises on anything else.

Usage: /usr/bin/python3 models/austen-lm/check_onnx_numpy.py [model.onnx]
  runs the model on reference_logits.json's input and windows_8x256, and compares
  logits_first_row_sum, logits_last_token_top5 and perplexity_8x256.
"""
import json
import math
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def _np_dtype(to):
    try:
        return onnx.helper.tensor_dtype_to_np_dtype(to)
    except AttributeError:  # onnx < 1.13
        return onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[to]


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _slice(x, starts, ends, axes=None, steps=None):
    if axes is None:
        axes = range(len(starts))
    if steps is None:
        steps = [1] * len(starts)
    idx = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        idx[int(a)] = slice(int(s), int(e), int(st))  # python slicing clamps like ONNX
    return x[tuple(idx)]


def _softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=axis, keepdims=True)


def run(model, feeds):
    env = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    env.update(feeds)
    for node in model.graph.node:
        a = _attrs(node)
        x = [env[i] if i else None for i in node.input]
        op = node.op_type
        if op == "Constant":
            y = numpy_helper.to_array(a["value"])
        elif op == "Add":
            y = x[0] + x[1]
        elif op == "Sub":
            y = x[0] - x[1]
        elif op == "Mul":
            y = x[0] * x[1]
        elif op == "Div":
            y = x[0] / x[1] if np.issubdtype(x[0].dtype, np.floating) else x[0] // x[1]
        elif op == "Pow":
            y = np.power(x[0], x[1]).astype(x[0].dtype)
        elif op == "Neg":
            y = -x[0]
        elif op == "Sqrt":
            y = np.sqrt(x[0])
        elif op == "Reciprocal":
            y = (1.0 / x[0]).astype(x[0].dtype)
        elif op == "Cos":
            y = np.cos(x[0])
        elif op == "Sin":
            y = np.sin(x[0])
        elif op == "Sigmoid":
            y = (1.0 / (1.0 + np.exp(-x[0]))).astype(x[0].dtype)
        elif op == "MatMul":
            y = np.matmul(x[0], x[1])
        elif op == "Cast":
            y = x[0].astype(_np_dtype(a["to"]))
        elif op == "Concat":
            y = np.concatenate(x, axis=a["axis"])
        elif op == "Gather":
            y = np.take(x[0], x[1], axis=a.get("axis", 0))
        elif op == "Equal":
            y = np.equal(x[0], x[1])
        elif op == "Greater":
            y = np.greater(x[0], x[1])
        elif op == "Less":
            y = np.less(x[0], x[1])
        elif op == "Or":
            y = np.logical_or(x[0], x[1])
        elif op == "Not":
            y = np.logical_not(x[0])
        elif op == "Where":
            y = np.where(x[0], x[1], x[2])
        elif op == "Range":
            y = np.arange(x[0], x[1], x[2]).astype(x[0].dtype)
        elif op == "ReduceMean":
            axes = a.get("axes")
            y = np.mean(x[0], axis=tuple(axes) if axes is not None else None,
                        keepdims=bool(a.get("keepdims", 1))).astype(x[0].dtype)
        elif op == "Reshape":
            shape = [int(s) for s in x[1]]
            shape = [x[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
            y = x[0].reshape(shape)
        elif op == "Shape":
            s = np.array(x[0].shape, dtype=np.int64)
            y = s[a.get("start", 0):a.get("end", len(s))] if ("start" in a or "end" in a) else s
        elif op == "Slice":
            y = _slice(x[0], x[1], x[2], x[3] if len(x) > 3 else None, x[4] if len(x) > 4 else None)
        elif op == "Softmax":
            y = _softmax(x[0], a.get("axis", -1))
        elif op == "Transpose":
            y = np.transpose(x[0], a.get("perm"))
        elif op == "Unsqueeze":
            y = x[0]
            axes = sorted(int(v) if v >= 0 else int(v) + x[0].ndim + len(x[1]) for v in x[1])
            for ax in axes:
                y = np.expand_dims(y, ax)
        elif op == "Expand":
            y = x[0] * np.ones([int(s) for s in x[1]], dtype=x[0].dtype)
        else:
            raise NotImplementedError("op %s not supported by this checker" % op)
        y = np.asarray(y)
        env[node.output[0]] = y
    return [env[o.name] for o in model.graph.output]


def nll_ppl(logits, ids):
    lp = logits[:, :-1].astype(np.float64)
    lp = lp - lp.max(-1, keepdims=True)
    lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
    return math.exp(-np.take_along_axis(lp, ids[:, 1:, None], -1).mean())


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    path = argv[0] if argv else os.path.join(HERE, "model.onnx")
    model = onnx.load(path)
    with open(os.path.join(HERE, "reference_logits.json")) as f:
        ref = json.load(f)
    ids = np.array([ref["input_ids"]], dtype=np.int64)
    logits = run(model, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]
    s = float(logits[0, 0].astype(np.float64).sum())
    top5 = np.argsort(-logits[0, -1])[:5].tolist()
    print("logits_first_row_sum: numpy-onnx %.6f  pytorch %.6f" % (s, ref["logits_first_row_sum"]))
    print("top5 last token:      numpy-onnx %s  pytorch %s" % (top5, ref["logits_last_token_top5"]))
    # left padding with masked pad keys must not change the real tokens' logits
    ids40 = ids[:, :40]
    l40 = run(model, {"input_ids": ids40, "attention_mask": np.ones_like(ids40)})[0]
    pad = np.concatenate([np.zeros((1, 24), np.int64), ids40], axis=1)
    mask = np.concatenate([np.zeros((1, 24), np.int64), np.ones((1, 40), np.int64)], axis=1)
    lp = run(model, {"input_ids": pad, "attention_mask": mask})[0]
    pad_diff = float(np.abs(lp[:, 24:] - l40).max())
    print("left-padding max |diff| on real tokens: %.3g" % pad_diff)
    w = np.array(ref["windows_8x256"], dtype=np.int64)
    lg = run(model, {"input_ids": w, "attention_mask": np.ones_like(w)})[0]
    ppl = nll_ppl(lg, w)
    print("perplexity_8x256:     numpy-onnx %.6f  pytorch %.6f  rel diff %.2e" %
          (ppl, ref["perplexity_8x256"], abs(ppl / ref["perplexity_8x256"] - 1)))
    ok = (abs(s - ref["logits_first_row_sum"]) <= 1e-3 * max(1.0, abs(s)) and top5 == ref["logits_last_token_top5"]
          and abs(ppl / ref["perplexity_8x256"] - 1) < 1e-4 and pad_diff < 1e-3)
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
