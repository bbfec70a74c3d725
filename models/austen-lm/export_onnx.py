#!/usr/bin/python3
"""Export the trained checkpoint to ONNX (opset 17) and write reference values.

Outputs in models/austen-lm/:
  model.onnx             inputs input_ids, attention_mask (int64 [batch, sequence]),
                         output logits (float32 [batch, sequence, vocab]); dynamic batch and
                         sequence; weights stored inside the single file.
  reference_logits.json  PyTorch reference values for the C# / ONNX Runtime tests.

attention_mask: 1 = real token, 0 = padding; padded positions are masked out as keys
(positions are always 0..T-1, so pad on the right).

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
    ap.add_argument("--skip-reference-eval", action="store_true",
                    help="do not run onnx.reference.ReferenceEvaluator on the exported graph")
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
        # padding check: right-padded batch must give the same logits on the real tokens
        pad = torch.cat([ids64[:, :40], torch.zeros(1, 24, dtype=torch.long)], dim=1)
        mask = torch.cat([torch.ones(1, 40, dtype=torch.long), torch.zeros(1, 24, dtype=torch.long)], dim=1)
        lp = model(pad, mask)
        assert torch.allclose(lp[:, :40], logits64[:, :40], atol=1e-4), "padding changes real-token logits"
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

    if not args.skip_reference_eval:
        try:
            from onnx.reference import ReferenceEvaluator
        except ImportError:
            ReferenceEvaluator = None
            print("onnx.reference not available; skipped numeric check of the ONNX graph")
        if ReferenceEvaluator is not None:
            sess = ReferenceEvaluator(m)
            out = sess.run(None, {"input_ids": ids64.numpy(), "attention_mask": np.ones_like(ids64.numpy())})[0]
            diff = float(np.abs(out - logits64.numpy()).max())
            print("onnx.reference vs PyTorch on the 64-token window: max |diff| %.3g" % diff)
            ref["onnx_reference_evaluator_max_abs_diff_64"] = diff
            x = windows[:2].numpy()
            out = sess.run(None, {"input_ids": x, "attention_mask": np.ones_like(x)})[0]
            lp = out[:, :-1].astype(np.float64)
            lp = lp - lp.max(-1, keepdims=True)
            lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
            nll = -np.take_along_axis(lp, x[:, 1:, None], -1).mean()
            with torch.no_grad():
                p2 = perplexity(model, windows[:2])
            print("perplexity of first 2 windows: onnx.reference %.6f, PyTorch %.6f" % (math.exp(nll), p2))
            ref["perplexity_2x256_onnx_reference"] = math.exp(nll)
            ref["perplexity_2x256_pytorch"] = p2

    with open(os.path.join(HERE, "reference_logits.json"), "w") as f:
        json.dump(ref, f, indent=1)
    print("perplexity_8x256 %.4f; wrote reference_logits.json" % ppl8)


if __name__ == "__main__":
    main()
