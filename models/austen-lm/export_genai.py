#!/usr/bin/python3
"""Build an ONNX Runtime GenAI model folder (models/austen-genai/) from the trained Austen LM (models/austen-lm/model.onnx).

The trained weights are read from models/austen-lm/model.onnx (its checkpoint is not in the repository and torch is
not needed): the same network is written again with onnx.helper as a decoder with a KV cache, in the I/O layout that
onnxruntime-genai's decoder expects:

  inputs   input_ids int64 [batch, sequence], attention_mask int64 [batch, total_sequence],
           position_ids int64 [batch, sequence],
           past_key_values.N.key / .value float32 [batch, 4, past_sequence, 64]   (N = 0..5)
  outputs  logits float32 [batch, sequence, 4096],
           present.N.key / .value float32 [batch, 4, total_sequence, 64]

Plain opset-17 ops only (no com.microsoft GroupQueryAttention), so OnnxQuant's passes see ordinary MatMuls after
decomposed RMSNorms, and models/austen-lm/check_onnx_numpy.py's interpreter can run the graph. RoPE reads cos/sin
tables (context_length rows) at position_ids. Attention masks a key j for the query at absolute position P+i when
j > P+i (causal, P = total - sequence) or attention_mask[b, j] == 0.

Also writes genai_config.json, tokenizer.json (Hugging Face byte-level BPE, from vocab.json + merges.txt) and
tokenizer_config.json, then checks numerically (numpy) that the graph equals model.onnx on the reference tokens, both in
one pass and as prefill + one-token decode steps through the KV cache.

Usage: /usr/bin/python3 models/austen-lm/export_genai.py   (writes models/austen-genai/)
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SOURCE = os.path.dirname(os.path.abspath(__file__))
HERE = os.path.join(SOURCE, "..", "austen-genai")
sys.path.insert(0, SOURCE)
import check_onnx_numpy  # noqa: E402

LAYERS, HEADS, HEAD, HIDDEN, VOCAB = 6, 4, 64, 256, 4096
EPS, THETA, CONTEXT = 1e-5, 10000.0, 1024
EOS = 4095


class Builder:
    def __init__(self):
        self.nodes, self.inits, self.count = [], [], 0

    def init(self, name, array):
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def const(self, array, dtype=np.int64):
        self.count += 1
        return self.init("const_%d" % self.count, np.asarray(array, dtype=dtype))

    def node(self, op, inputs, name, outputs=1, out=None, **attrs):
        outs = [out] if out else ["%s_output_%d" % (name, i) for i in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs[0] if outputs == 1 else outs


def source_weights():
    model = onnx.load(os.path.join(SOURCE, "model.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    linears = {}
    for n in model.graph.node:
        if n.op_type == "MatMul" and n.input[1] in inits:
            # "/model/layers.0/self_attn/q_proj/MatMul" -> "layers.0/q_proj"; "/model/lm_head/MatMul" -> "lm_head"
            parts = n.name.strip("/").split("/")
            key = "lm_head" if parts[1] == "lm_head" else parts[1] + "/" + parts[3]
            linears[key] = inits[n.input[1]]
    return inits, linears


def rms_norm(b, x, gamma, name):
    sq = b.node("Mul", [x, x], name + "/Pow")
    mean = b.node("ReduceMean", [sq], name + "/ReduceMean", axes=[-1], keepdims=1)
    var = b.node("Add", [mean, b.const(EPS, np.float32)], name + "/Add")
    std = b.node("Sqrt", [var], name + "/Sqrt")
    inv = b.node("Div", [b.const(1.0, np.float32), std], name + "/Div")
    normed = b.node("Mul", [x, inv], name + "/Mul")
    return b.node("Mul", [normed, gamma], name + "/Mul_1")


def rope(b, x, cos, sin, name):
    half = HEAD // 2
    first = b.node("Slice", [x, b.const([0]), b.const([half]), b.const([-1])], name + "/Slice")
    second = b.node("Slice", [x, b.const([half]), b.const([HEAD]), b.const([-1])], name + "/Slice_1")
    neg = b.node("Neg", [second], name + "/Neg")
    rotated = b.node("Concat", [neg, first], name + "/Concat", axis=-1)
    return b.node("Add", [b.node("Mul", [x, cos], name + "/Mul"), b.node("Mul", [rotated, sin], name + "/Mul_1")],
                  name + "/Add")


def heads(b, x, name):
    shaped = b.node("Reshape", [x, b.const([0, 0, HEADS, HEAD])], name + "/Reshape")
    return b.node("Transpose", [shaped], name + "/Transpose", perm=[0, 2, 1, 3])


def build():
    inits, linears = source_weights()
    b = Builder()
    embed = b.init("model.embed_tokens.weight", inits["model.embed_tokens.weight"])
    inv_freq = 1.0 / THETA ** (np.arange(0, HEAD, 2, dtype=np.float64) / HEAD)
    freqs = np.outer(np.arange(CONTEXT, dtype=np.float64), inv_freq)
    angles = np.concatenate([freqs, freqs], axis=-1)
    cos_table = b.init("cos_cache", np.cos(angles).astype(np.float32))
    sin_table = b.init("sin_cache", np.sin(angles).astype(np.float32))

    x = b.node("Gather", [embed, "input_ids"], "/model/embed_tokens/Gather")
    cos = b.node("Unsqueeze", [b.node("Gather", [cos_table, "position_ids"], "/model/rotary/Gather"), b.const([1])],
                 "/model/rotary/Unsqueeze")
    sin = b.node("Unsqueeze", [b.node("Gather", [sin_table, "position_ids"], "/model/rotary/Gather_1"), b.const([1])],
                 "/model/rotary/Unsqueeze_1")
    # Mask [batch, 1, sequence, total]: True where a key must not be attended.
    total = b.node("Shape", ["attention_mask"], "/model/mask/Shape", start=1, end=2)
    seq = b.node("Shape", ["input_ids"], "/model/mask/Shape_1", start=1, end=2)
    past = b.node("Sub", [total, seq], "/model/mask/Sub")
    total_s = b.node("Reshape", [total, b.const(np.zeros(0))], "/model/mask/Reshape")
    past_s = b.node("Reshape", [past, b.const(np.zeros(0))], "/model/mask/Reshape_1")
    keys = b.node("Range", [b.const(0), total_s, b.const(1)], "/model/mask/Range")
    queries = b.node("Unsqueeze", [b.node("Range", [past_s, total_s, b.const(1)], "/model/mask/Range_1"), b.const([1])],
                     "/model/mask/Unsqueeze")
    future = b.node("Greater", [keys, queries], "/model/mask/Greater")
    padded = b.node("Equal", ["attention_mask", b.const(0)], "/model/mask/Equal")
    padded = b.node("Unsqueeze", [padded, b.const([1, 2])], "/model/mask/Unsqueeze_1")
    masked = b.node("Or", [future, padded], "/model/mask/Or")

    for i in range(LAYERS):
        p = "/model/layers.%d" % i
        g_in = b.init("model.layers.%d.input_layernorm.weight" % i, inits["model.layers.%d.input_layernorm.weight" % i])
        g_post = b.init("model.layers.%d.post_attention_layernorm.weight" % i,
                        inits["model.layers.%d.post_attention_layernorm.weight" % i])
        h = rms_norm(b, x, g_in, p + "/input_layernorm")

        def proj(inp, which, group):
            w = b.init("model.layers.%d.%s.%s.weight_t" % (i, group, which), linears["layers.%d/%s" % (i, which)])
            return b.node("MatMul", [inp, w], "%s/%s/%s/MatMul" % (p, "attn" if group == "self_attn" else "mlp", which))

        q = rope(b, heads(b, proj(h, "q_proj", "self_attn"), p + "/attn/q"), cos, sin, p + "/attn/q_rotary")
        k = rope(b, heads(b, proj(h, "k_proj", "self_attn"), p + "/attn/k"), cos, sin, p + "/attn/k_rotary")
        v = heads(b, proj(h, "v_proj", "self_attn"), p + "/attn/v")
        k_all = b.node("Concat", ["past_key_values.%d.key" % i, k], p + "/attn/k_cache", out="present.%d.key" % i, axis=2)
        v_all = b.node("Concat", ["past_key_values.%d.value" % i, v], p + "/attn/v_cache", out="present.%d.value" % i,
                       axis=2)
        kt = b.node("Transpose", [k_all], p + "/attn/k_transpose", perm=[0, 1, 3, 2])
        scores = b.node("Mul", [b.node("MatMul", [q, kt], p + "/attn/qk/MatMul"), b.const(HEAD ** -0.5, np.float32)],
                        p + "/attn/scale")
        scores = b.node("Where", [masked, b.const(-1e9, np.float32), scores], p + "/attn/mask")
        probs = b.node("Softmax", [scores], p + "/attn/Softmax", axis=-1)
        ctx = b.node("MatMul", [probs, v_all], p + "/attn/pv/MatMul")
        ctx = b.node("Transpose", [ctx], p + "/attn/ctx/Transpose", perm=[0, 2, 1, 3])
        ctx = b.node("Reshape", [ctx, b.const([0, 0, HIDDEN])], p + "/attn/ctx/Reshape")
        x = b.node("Add", [x, proj(ctx, "o_proj", "self_attn")], p + "/attn/residual")

        h = rms_norm(b, x, g_post, p + "/post_attention_layernorm")
        gate = proj(h, "gate_proj", "mlp")
        act = b.node("Mul", [gate, b.node("Sigmoid", [gate], p + "/mlp/act/Sigmoid")], p + "/mlp/act/Mul")
        mixed = b.node("Mul", [act, proj(h, "up_proj", "mlp")], p + "/mlp/Mul")
        x = b.node("Add", [x, proj(mixed, "down_proj", "mlp")], p + "/mlp/residual")

    g = b.init("model.norm.weight", inits["model.norm.weight"])
    h = rms_norm(b, x, g, "/model/norm")
    head = b.init("lm_head.weight_t", linears["lm_head"])
    b.nodes.append(helper.make_node("MatMul", [h, head], ["logits"], name="/lm_head/MatMul"))

    f32, i64 = TensorProto.FLOAT, TensorProto.INT64
    kv_shape = ["batch_size", HEADS, "past_sequence_length", HEAD]
    present_shape = ["batch_size", HEADS, "total_sequence_length", HEAD]
    inputs = [helper.make_tensor_value_info("input_ids", i64, ["batch_size", "sequence_length"]),
              helper.make_tensor_value_info("attention_mask", i64, ["batch_size", "total_sequence_length"]),
              helper.make_tensor_value_info("position_ids", i64, ["batch_size", "sequence_length"])]
    outputs = [helper.make_tensor_value_info("logits", f32, ["batch_size", "sequence_length", VOCAB])]
    for i in range(LAYERS):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info("past_key_values.%d.%s" % (i, kind), f32, kv_shape))
            outputs.append(helper.make_tensor_value_info("present.%d.%s" % (i, kind), f32, present_shape))
    graph = helper.make_graph(b.nodes, "austen-lm-genai", inputs, outputs, b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="austen-lm/export_genai.py")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def genai_config():
    return {
        "model": {
            "bos_token_id": EOS, "eos_token_id": EOS, "pad_token_id": EOS,
            "context_length": CONTEXT, "type": "llama", "vocab_size": VOCAB,
            "decoder": {
                "session_options": {"log_id": "onnxruntime-genai", "provider_options": []},
                "filename": "model.onnx",
                "head_size": HEAD, "hidden_size": HIDDEN,
                "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask", "position_ids": "position_ids",
                           "past_key_names": "past_key_values.%d.key", "past_value_names": "past_key_values.%d.value"},
                "outputs": {"logits": "logits", "present_key_names": "present.%d.key",
                            "present_value_names": "present.%d.value"},
                "num_attention_heads": HEADS, "num_hidden_layers": LAYERS, "num_key_value_heads": HEADS,
            },
        },
        "search": {"diversity_penalty": 0.0, "do_sample": False, "early_stopping": True, "length_penalty": 1.0,
                   "max_length": 256, "min_length": 0, "no_repeat_ngram_size": 0, "num_beams": 1,
                   "num_return_sequences": 1, "past_present_share_buffer": False, "repetition_penalty": 1.0,
                   "temperature": 1.0, "top_k": 1, "top_p": 1.0},
    }


def tokenizer_files():
    with open(os.path.join(SOURCE, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    with open(os.path.join(SOURCE, "merges.txt"), encoding="utf-8") as f:
        merges = [line.rstrip("\n") for line in f if line.strip() and not line.startswith("#version")]
    eos = "<|endoftext|>"
    assert vocab[eos] == EOS
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": EOS, "content": eos, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True}],
        "normalizer": None, "pre_tokenizer": byte_level, "post_processor": byte_level, "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "vocab": vocab, "merges": merges},
    }
    config = {"tokenizer_class": "GPT2Tokenizer", "bos_token": eos, "eos_token": eos, "unk_token": eos,
              "add_prefix_space": False, "add_bos_token": False, "model_max_length": CONTEXT, "clean_up_tokenization_spaces": False}
    return tokenizer, config


def check(model):
    """The KV graph equals model.onnx: one pass over 64 reference tokens, then prefill 40 + 24 single-token steps."""
    source = onnx.load(os.path.join(SOURCE, "model.onnx"))
    with open(os.path.join(SOURCE, "reference_logits.json")) as f:
        ids = np.array([json.load(f)["input_ids"]], dtype=np.int64)
    want = check_onnx_numpy.run(source, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]

    def step(tokens, start, cache):
        feeds = {"input_ids": tokens, "attention_mask": np.ones((1, start + tokens.shape[1]), np.int64),
                 "position_ids": np.arange(start, start + tokens.shape[1], dtype=np.int64)[None, :]}
        for i in range(LAYERS):
            feeds["past_key_values.%d.key" % i] = cache[2 * i]
            feeds["past_key_values.%d.value" % i] = cache[2 * i + 1]
        out = check_onnx_numpy.run(model, feeds)
        return out[0], out[1:]

    empty = [np.zeros((1, HEADS, 0, HEAD), np.float32)] * (2 * LAYERS)
    full, _ = step(ids, 0, empty)
    logits, cache = step(ids[:, :40], 0, empty)
    pieces = [logits]
    for t in range(40, ids.shape[1]):
        logits, cache = step(ids[:, t:t + 1], t, cache)
        pieces.append(logits)
    incremental = np.concatenate(pieces, axis=1)
    one = float(np.abs(full - want).max())
    inc = float(np.abs(incremental - want).max())
    print("max |logits - model.onnx|: one pass %.3g, prefill 40 + 24 decode steps %.3g" % (one, inc))
    if one > 1e-3 or inc > 1e-3:
        raise SystemExit("the KV-cache graph does not reproduce models/austen-lm/model.onnx")


def main():
    model = build()
    check(model)
    os.makedirs(HERE, exist_ok=True)  # not committed: scripts/test.sh makes it on a fresh clone
    onnx.save(model, os.path.join(HERE, "model.onnx"))
    with open(os.path.join(HERE, "genai_config.json"), "w") as f:
        json.dump(genai_config(), f, indent=4)
    tokenizer, config = tokenizer_files()
    with open(os.path.join(HERE, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False, indent=1)
    with open(os.path.join(HERE, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    print("wrote model.onnx (%.1f MB), genai_config.json, tokenizer.json, tokenizer_config.json in %s"
          % (os.path.getsize(os.path.join(HERE, "model.onnx")) / 1e6, HERE))


if __name__ == "__main__":
    main()
