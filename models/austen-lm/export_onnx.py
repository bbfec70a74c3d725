#!/usr/bin/python3
"""Export the trained checkpoint to ONNX (opset 17) and write reference values.

Outputs in models/austen-lm/:
  model.onnx             inputs input_ids, attention_mask (int64 [batch, sequence]),
                         output logits (float32 [batch, sequence, vocab]); dynamic batch and
                         sequence; weights stored inside the single file.
  reference_logits.json  PyTorch reference values for the C# / ONNX Runtime tests.

attention_mask: 1 = real token, 0 = padding; padded positions are masked out as keys
(positions are always 0..T-1; as RoPE attention depends only on relative positions, left
padding with masked pad keys gives the real tokens the same logits as no padding).
The exported graph is then run by check_onnx_numpy.py (a small numpy ONNX interpreter;
onnxruntime / onnx.reference are not available on the build machine) and compared.

Usage: /usr/bin/python3 models/austen-lm/export_onnx.py [--checkpoint /tmp/austen-lm/checkpoint.pt]
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from model import Config, LlamaLM, count_params  # noqa: E402
from train_tokenizer import Tokenizer, read_text, HELDOUT_NOVEL  # noqa: E402
from train import heldout_windows, perplexity  # noqa: E402


class Wrapper(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids, attention_mask)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default="/tmp/austen-lm/checkpoint.pt")
    ap.add_argument("--out", default=os.path.join(HERE, "model.onnx"))
    ap.add_argument("--skip-numpy-check", action="store_true",
                    help="do not run the exported graph with check_onnx_numpy.py")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))

    ck = torch.load(args.checkpoint, map_location="cpu")
    cfg = Config(**ck["config"])
    model = LlamaLM(cfg)
    model.load_state_dict(ck["model"])
    model.eval()
    print("params %d" % count_params(model))

    tok = Tokenizer.load(HERE)
    held = torch.tensor(tok.encode(read_text(HELDOUT_NOVEL)), dtype=torch.long)
    windows = heldout_windows(held, 256)
    ids64 = held[:64][None, :]
    with torch.no_grad():
        logits64 = model(ids64, torch.ones_like(ids64))
        ppl8 = perplexity(model, windows[:8])
        # padding check: RoPE scores depend only on relative positions, so a left-padded row
        # whose pad keys are masked must give the real tokens the same logits as the unpadded row
        ids40 = ids64[:, :40]
        l40 = model(ids40, torch.ones_like(ids40))
        pad = torch.cat([torch.zeros(1, 24, dtype=torch.long), ids40], dim=1)
        mask = torch.cat([torch.zeros(1, 24, dtype=torch.long), torch.ones(1, 40, dtype=torch.long)], dim=1)
        lp = model(pad, mask)
        pad_diff = float((lp[:, 24:] - l40).abs().max())
        unmasked_diff = float((model(pad, torch.ones_like(pad))[:, 24:] - l40).abs().max())
        print("left padding: max |diff| with mask %.3g, without mask %.3g" % (pad_diff, unmasked_diff))
        assert pad_diff < 1e-3 < unmasked_diff, "attention_mask does not mask padded keys"
    top5 = torch.topk(logits64[0, -1], 5)

    wrapper = Wrapper(model).eval()
    dummy_ids = windows[:2, :32].clone()
    dummy_mask = torch.ones_like(dummy_ids)
    torch.onnx.export(wrapper, (dummy_ids, dummy_mask), args.out, opset_version=17,
                      input_names=["input_ids", "attention_mask"], output_names=["logits"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                    "attention_mask": {0: "batch", 1: "sequence"},
                                    "logits": {0: "batch", 1: "sequence"}},
                      do_constant_folding=True, export_params=True)
    import onnx
    m = onnx.load(args.out)
    onnx.checker.check_model(m, full_check=True)
    ops = sorted({n.op_type for n in m.graph.node})
    domains = sorted({n.domain or "ai.onnx" for n in m.graph.node})
    used = {i for n in m.graph.node for i in n.input}
    assert "attention_mask" in used, "attention_mask is not used by the graph"
    size = os.path.getsize(args.out)
    print("exported %s: %.1f MB, %d nodes, ops %s, domains %s" % (args.out, size / 1e6, len(m.graph.node), ops,
                                                                    domains))

    ref = {
        "description": "PyTorch reference for model.onnx. input_ids: first 64 tokens of Persuasion (tokenizer in this "
                       "folder), attention_mask all ones; logits_first_row_sum = sum over the vocabulary of "
                       "logits[0, 0, :]; logits_last_token_top5 = ids of the 5 largest logits at position 63 "
                       "(values in logits_last_token_top5_values). perplexity_8x256: Persuasion cut into "
                       "non-overlapping 256-token windows (windows_8x256 = the first 8), each window fed alone "
                       "with attention_mask ones, tokens 1..255 of each window scored by next-token NLL, "
                       "perplexity = exp(mean NLL over the 8*255 scored tokens).",
        "input_ids": ids64[0].tolist(),
        "logits_first_row_sum": float(logits64[0, 0].double().sum()),
        "logits_first_row_first5": [float(v) for v in logits64[0, 0, :5]],
        "logits_last_token_top5": top5.indices.tolist(),
        "logits_last_token_top5_values": [float(v) for v in top5.values],
        "perplexity_8x256": ppl8,
        "windows_8x256": windows[:8].tolist(),
        "heldout_perplexity_all_windows": ck.get("heldout_ppl"),
        "onnx": {"opset": 17, "ops": ops, "nodes": len(m.graph.node), "bytes": size},
    }

    with open(os.path.join(HERE, "reference_logits.json"), "w") as f:
        json.dump(ref, f, indent=1)
    print("perplexity_8x256 %.4f; wrote reference_logits.json" % ppl8)
    if not args.skip_numpy_check:
        import check_onnx_numpy
        if check_onnx_numpy.main([args.out]) != 0:
            raise SystemExit("ONNX graph does not reproduce the PyTorch reference")


if __name__ == "__main__":
    main()
