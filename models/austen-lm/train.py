#!/usr/bin/python3
"""Train the small Llama-style LM (model.py) on five Austen novels; Persuasion is held out.

Wall-time budget: the cosine learning-rate schedule runs over the *time* budget
(progress = elapsed / budget), so a run ends after --minutes of wall time whatever the
machine speed.  --max-steps N instead runs exactly N steps with a step-based schedule
(reproducible run; same seed -> same batches).

Held-out perplexity: Persuasion is tokenised, cut into non-overlapping windows of 256
tokens (the incomplete tail is dropped); inside each window the model predicts tokens
1..255 from their prefix (fresh context per window, the first token of a window is not
scored); perplexity = exp(mean NLL over all scored tokens).

Run (see README.md):
  LD_PRELOAD=libjemalloc.so.2 MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1 \
  OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 nice -n 19 \
  /usr/bin/python3 models/austen-lm/train.py --minutes 45
"""
import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from model import Config, LlamaLM, count_params  # noqa: E402
from train_tokenizer import Tokenizer, read_text, TRAIN_NOVELS, HELDOUT_NOVEL  # noqa: E402


def encode_corpus(tok):
    train = []
    for name in TRAIN_NOVELS:
        train.extend(tok.encode(read_text(name)))
        train.append(tok.eot_id)
    held = tok.encode(read_text(HELDOUT_NOVEL))
    return torch.tensor(train, dtype=torch.long), torch.tensor(held, dtype=torch.long)


def heldout_windows(held_ids, window=256, limit=None):
    n = len(held_ids) // window
    if limit is not None:
        n = min(n, limit)
    return held_ids[: n * window].reshape(n, window)


@torch.no_grad()
def perplexity(model, windows, batch=8):
    model.eval()
    nll, count = 0.0, 0
    for i in range(0, windows.shape[0], batch):
        x = windows[i:i + batch]
        logits = model(x, torch.ones_like(x))
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).double(),
                               x[:, 1:].reshape(-1), reduction="sum")
        nll += loss.item()
        count += x[:, 1:].numel()
    model.train()
    return math.exp(nll / count)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=35.0, help="wall-time budget for training")
    ap.add_argument("--max-steps", type=int, default=0, help="run exactly this many steps instead")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--warmup-steps", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--checkpoint", default="/tmp/austen-lm/checkpoint.pt")
    ap.add_argument("--results", default=os.path.join(HERE, "results.json"))
    ap.add_argument("--eval-every-min", type=float, default=5.0)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)

    t = time.time()
    a = torch.randn(1024, 1024)
    for _ in range(3):
        a @ a
    t = time.time()
    for _ in range(5):
        a @ a
    gflops = 5 * 2 * 1024 ** 3 / (time.time() - t) / 1e9
    print("torch %s, threads %d, matmul %.1f GFLOPS" % (torch.__version__, torch.get_num_threads(), gflops),
          flush=True)

    tok = Tokenizer.load(HERE)
    t0 = time.time()
    train_ids, held_ids = encode_corpus(tok)
    print("train tokens %d, held-out (Persuasion) tokens %d, encode %.1fs" %
          (len(train_ids), len(held_ids), time.time() - t0), flush=True)
    windows = heldout_windows(held_ids, args.context)
    quick = windows[:16]

    cfg = Config(vocab_size=len(tok.vocab))
    model = LlamaLM(cfg)
    nparams = count_params(model)
    print("config %s, params %d" % (cfg.to_dict(), nparams), flush=True)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    gen = torch.Generator().manual_seed(args.seed)
    budget = args.minutes * 60.0
    T = args.context
    nmax = len(train_ids) - T - 1

    def lr_at(step, elapsed):
        if step < args.warmup_steps:
            return args.lr * (step + 1) / args.warmup_steps
        if args.max_steps:
            prog = (step - args.warmup_steps) / max(1, args.max_steps - args.warmup_steps)
        else:
            prog = elapsed / budget
        prog = min(max(prog, 0.0), 1.0)
        return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * prog)))

    model.train()
    start = time.time()
    last_eval = start
    step = 0
    tokens = 0
    ema = None
    history = []
    while True:
        elapsed = time.time() - start
        if args.max_steps and step >= args.max_steps:
            break
        if not args.max_steps and elapsed >= budget:
            break
        lr = lr_at(step, elapsed)
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, nmax, (args.batch,), generator=gen)
        idx = starts[:, None] + torch.arange(T + 1)[None, :]
        chunk = train_ids[idx]
        x, y = chunk[:, :-1], chunk[:, 1:]
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += x.numel()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        now = time.time()
        if step % 20 == 0:
            print("step %5d  %6.1f min  loss %.3f (ema %.3f)  lr %.2e  %.0f tok/s" %
                  (step, (now - start) / 60, loss.item(), ema, lr, tokens / (now - start)), flush=True)
        if now - last_eval >= args.eval_every_min * 60:
            ppl = perplexity(model, quick)
            history.append({"step": step, "minutes": round((now - start) / 60, 2), "train_loss_ema": round(ema, 4),
                            "heldout_ppl_16x256": round(ppl, 3)})
            print("  eval: held-out ppl (first 16 windows) %.2f" % ppl, flush=True)
            last_eval = time.time()

    train_time = time.time() - start
    print("training done: %d steps, %d tokens, %.1f min, %.0f tok/s" %
          (step, tokens, train_time / 60, tokens / train_time), flush=True)
    t = time.time()
    ppl = perplexity(model, windows)
    ppl8 = perplexity(model, windows[:8])
    print("held-out perplexity on Persuasion (%d non-overlapping windows of %d): %.3f  (first 8: %.3f)  eval %.1fs" %
          (windows.shape[0], T, ppl, ppl8, time.time() - t), flush=True)

    os.makedirs(os.path.dirname(args.checkpoint), exist_ok=True)
    torch.save({"config": cfg.to_dict(), "model": model.state_dict(), "steps": step, "tokens": tokens,
                "train_seconds": train_time, "heldout_ppl": ppl}, args.checkpoint)
    print("saved %s" % args.checkpoint, flush=True)

    results = {
        "model": {"architecture": "llama-style decoder (RMSNorm, RoPE, SwiGLU, untied lm_head)",
                  **cfg.to_dict(), "parameters": nparams},
        "tokenizer": {"type": "byte-level BPE (GPT-2 format)", "vocab_size": len(tok.vocab),
                      "train_novels": TRAIN_NOVELS},
        "data": {"train_novels": TRAIN_NOVELS, "heldout_novel": HELDOUT_NOVEL,
                 "train_tokens": len(train_ids), "heldout_tokens": len(held_ids)},
        "training": {"seed": args.seed, "optimizer": "AdamW(betas=0.9,0.95, eps=1e-8)",
                     "lr": args.lr, "min_lr_ratio": args.min_lr_ratio, "warmup_steps": args.warmup_steps,
                     "schedule": "cosine over steps" if args.max_steps else "cosine over wall time",
                     "weight_decay": args.weight_decay, "grad_clip": 1.0, "batch": args.batch, "context": T,
                     "budget_minutes": None if args.max_steps else args.minutes, "max_steps": args.max_steps or None,
                     "steps": step, "tokens_seen": tokens, "train_seconds": round(train_time, 1),
                     "tokens_per_second": round(tokens / train_time, 1), "threads": args.threads,
                     "matmul_gflops": round(gflops, 1), "torch": torch.__version__,
                     "machine": "2 cores, run under nice -n 19 with concurrent builds",
                     "history": history},
        "heldout": {"novel": HELDOUT_NOVEL, "metric": "perplexity, non-overlapping windows of %d, tokens 1..%d of "
                    "each window scored" % (T, T - 1), "windows": int(windows.shape[0]),
                    "scored_tokens": int(windows.shape[0] * (T - 1)), "perplexity": round(ppl, 4),
                    "perplexity_first_8_windows": round(ppl8, 4)},
    }
    with open(args.results, "w") as f:
        json.dump(results, f, indent=1)
    print("wrote %s" % args.results, flush=True)


if __name__ == "__main__":
    main()
