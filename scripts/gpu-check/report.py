#!/usr/bin/env python3
"""Writes bench/results/gpu.md from what scripts/gpu-check/measure.sh left in its work folder (docs/gpu-check.md).

Usage: python3 scripts/gpu-check/report.py WORK OUT.md DEVICE
WORK holds steps.tsv (step, exit, seconds), evals.tsv (base, variant, placement, bytes, exit) and BASE/VARIANT.json,
the `onnxquant eval --json` of each model (BASE/VARIANT.refused.json: the refusal with CPU fallback disabled).
Standard library only: it runs under whatever python3 the GPU machine has.
"""
import datetime
import json
import os
import platform
import re
import subprocess
import sys

NAMES = {"model": "{base}", "w8a8": "W8A8 int8 (s8s8, from {base})", "w4": "W4 MatMulNBits (from {base})"}
PLACEMENT = {
    "cuda-only": "CUDA EP only (CPU fallback disabled)",
    "cpu": "CPU (rehearsal, not a GPU figure)",
}


def _read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def _json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _machine(device):
    if device != "cuda":
        return "%s, %d cores (CPU rehearsal)" % (platform.processor() or platform.machine(), os.cpu_count() or 0)
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        gpu = "nvidia-smi did not answer"
    return "%s (nvidia-smi: name, memory, driver); %d CPU cores" % (gpu, os.cpu_count() or 0)


def _error(doc):
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        message = doc["error"].get("message", "")
        # The CLI wraps ONNX Runtime's reason in advice for users (SessionFactory.Open); the reason is the news here.
        if "could not start (" in message:
            message = message.split("could not start (", 1)[1].split("). It needs", 1)[0]
        return "exit %s: %s" % (doc.get("exit"), message[:300])
    return "no result"


def _placement_notes(path):
    """What ONNX Runtime's warnings (eval --verbose) said about the placement it chose, if anything."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return ""
    notes = []
    if "assigns shape related ops to CPU" in text:
        notes.append("ONNX Runtime put shape-related ops on the CPU by its own choice")
    match = re.search(r"(\d+) Memcpy nodes are added", text)
    if match:
        notes.append("%s Memcpy nodes added" % match.group(1))
    return "".join("; " + n for n in notes)


def rows(work):
    out = []
    for base, variant, placement, size, code in _read_tsv(os.path.join(work, "evals.tsv")):
        doc = _json(os.path.join(work, base, variant + ".json"))
        refused = _json(os.path.join(work, base, variant + ".refused.json"))
        name = NAMES[variant].format(base=base.upper())
        ok = code == "0" and isinstance(doc, dict) and doc.get("latency")
        cells = [name, "%.1f" % (int(size) / 1e6)]
        if ok:
            lat, ppl = doc["latency"], doc.get("perplexity") or {}
            cells += ["%.3f" % lat["prefill_ms"], "%.3f" % lat["step_ms"], "%.3f" % ppl.get("perplexity", float("nan"))]
        else:
            cells += ["-", "-", "-"]
        if not ok:
            where = "failed: " + _error(doc)
        elif placement == "cuda+cpu":
            where = "refused with CPU fallback disabled (%s); timed with ONNX Runtime's own placement" % _error(refused)
            where += _placement_notes(os.path.join(work, base, variant + ".placement.log"))
        else:
            where = PLACEMENT.get(placement, placement)
        out.append(cells + [where])
    return out


def render(work, device, when=None):
    when = when or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    setting = {k: os.environ.get("GPU_CHECK_" + k, v) for k, v in
               (("PREFILL", "512"), ("RUNS", "20"), ("TOKENS", "32768"), ("SAMPLES", "128"))}
    strict = " with `ONNXQUANT_NO_CPU_FALLBACK=1` (ONNX Runtime's `session.disable_cpu_ep_fallback`)" if device == "cuda" else ""
    intro = (
        "Model: the Austen LM (`models/austen-lm/model.onnx`, 7.2M parameters, no KV cache) and its FP16 copy "
        "(`scripts/gpu-check/fp16.py`). Each was calibrated (`calibrate --device {d} --samples {SAMPLES}`), then "
        "`smooth --target cuda` and `awq --target cuda` on those statistics. Every model then ran `eval --device {d} "
        "--latency {PREFILL} --latency-runs {RUNS} --max-tokens {TOKENS} --json`{strict}: prefill of {PREFILL} tokens and a "
        "1-token forward (no KV cache: the shape of a decode step, not a cached one), each the median of {RUNS} timed "
        "runs after two warm-ups; perplexity on Persuasion's first {TOKENS} tokens. MB: the model file and its external "
        "data."
    ).format(d=device, strict=strict, **setting)
    lines = [
        "# GPU check: FP32, FP16, W8A8 and W4 on the CUDA execution provider",
        "",
        "Produced by `bash scripts/gpu-check.sh run` (docs/gpu-check.md) on %s; machine: %s." % (when, _machine(device)),
        "",
        intro,
        "",
        "| model | MB | prefill (ms) | 1-token forward (ms) | perplexity | where it ran |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows(work)]
    steps = _read_tsv(os.path.join(work, "steps.tsv"))
    if steps:
        lines += ["", "Steps (wall time, exit code): " + "; ".join("%s %s s (exit %s)" % (n, s, c) for n, c, s in steps) + "."]
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) != 3:
        print("usage: report.py WORK OUT.md DEVICE", file=sys.stderr)
        return 2
    with open(argv[1], "w", encoding="utf-8") as f:
        f.write(render(argv[0], argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
