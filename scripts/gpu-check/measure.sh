#!/usr/bin/env bash
# The measuring half of `bash scripts/gpu-check.sh run` (docs/gpu-check.md), given the unpacked CLI: the Austen LM in
# FP32 and FP16, each calibrated, smoothed (W8A8, the CUDA form: int8 x int8 MatMulInteger) and AWQ'd (W4 MatMulNBits)
# with --device cuda, then every model evaluated on the CUDA EP with CPU fallback disabled (ONNXQUANT_NO_CPU_FALLBACK=1):
# perplexity on Persuasion, prefill and 1-token forward latency. Writes gpu.md, the raw results and the log to $OUT.
# Not `set -e`: a step that fails is a row of the report, and the steps after it still run.
set -uo pipefail
app=$GPU_CHECK_APP work=$GPU_CHECK_WORK out=$GPU_CHECK_OUT device=$GPU_CHECK_DEVICE repo=$GPU_CHECK_REPO
prefill=${GPU_CHECK_PREFILL:-512} runs=${GPU_CHECK_RUNS:-20} tokens=${GPU_CHECK_TOKENS:-32768} samples=${GPU_CHECK_SAMPLES:-128}
export GPU_CHECK_PREFILL=$prefill GPU_CHECK_RUNS=$runs GPU_CHECK_TOKENS=$tokens GPU_CHECK_SAMPLES=$samples  # report.py says them
log=$out/gpu-check.log
rm -rf "$work" && mkdir -p "$work" && : > "$log"
note() { echo "gpu-check: $*" | tee -a "$log"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

if [ "$device" = cuda ]; then
  libdirs=${GPU_CHECK_LIBDIRS:-}  # found by scripts/gpu-check.sh (cuda_libdirs)
  export LD_LIBRARY_PATH=$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  note "CUDA libraries from: ${libdirs:-none found}"
  missing=$(ldd "$(dirname "$app")/libonnxruntime_providers_cuda.so" 2>&1 | awk '/not found/ { print $1 }' | paste -sd' ')
  [ -z "$missing" ] || note "libonnxruntime_providers_cuda.so still lacks: $missing"
  nvidia-smi >> "$log" 2>&1
fi

# The steps: name, exit code and seconds in steps.tsv; their output in the log.
timed() {
  local name=$1 start rc
  shift
  echo "\$ $*" >> "$log"
  start=$(now)
  "$@" >> "$log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(since "$start")" >> "$work/steps.tsv"
  note "$name: exit $rc in $(since "$start") s"
  return $rc
}

austen=$repo/models/austen-lm
mkdir -p "$work/fp32" "$work/fp16"
cp "$austen/model.onnx" "$austen/vocab.json" "$austen/merges.txt" "$work/fp32/"
cp "$austen/vocab.json" "$austen/merges.txt" "$work/fp16/"
bases=(fp32)
python=
for py in python3 /usr/bin/python3; do "$py" -c 'import onnx, numpy' 2>/dev/null && { python=$py; break; }; done
if [ -n "$python" ] && timed "fp16 copy" "$python" "$repo/scripts/gpu-check/fp16.py" "$work/fp32/model.onnx" "$work/fp16/model.onnx"; then
  bases+=(fp16)
else
  note "no FP16 copy (python3 with onnx and numpy needed); FP16 rows left out"
fi

for b in "${bases[@]}"; do
  m=$work/$b/model.onnx
  timed "$b calibrate" "$app" calibrate "$m" --device "$device" --samples "$samples" -o "$work/$b/model.calib"
  timed "$b smooth" "$app" smooth "$m" --device "$device" --target cuda --stats "$work/$b/model.calib" -o "$work/$b/w8a8.onnx"
  timed "$b awq" "$app" awq "$m" --device "$device" --target cuda --stats "$work/$b/model.calib" -o "$work/$b/w4.onnx"
done

# gpu.md after every model, so a run stopped at the call's time limit still brings back the rows it has.
report() {
  cp "$work/steps.tsv" "$work/evals.tsv" "$out/" 2>/dev/null
  "${python:-python3}" "$repo/scripts/gpu-check/report.py" "$work" "$out/gpu.md" "$device" >> "$log" 2>&1 ||
    note "report.py failed; the raw results are in $out"
}

# Each model on the CUDA EP with fallback disabled; a refusal is recorded and the model timed again as ONNX Runtime
# places it by itself (shape arithmetic on the CPU), so the row still has numbers, marked as such.
for b in "${bases[@]}"; do
  for v in model w8a8 w4; do
    f=$work/$b/$v.onnx
    [ -f "$f" ] || continue
    "$app" inspect "$f" --ep cuda >> "$log" 2>&1
    args=(eval "$f" --device "$device" --max-tokens "$tokens" --latency "$prefill" --latency-runs "$runs" --json)
    placement=$device strict=0 rc=
    if [ "$device" = cuda ]; then
      ONNXQUANT_NO_CPU_FALLBACK=1 "$app" "${args[@]}" > "$work/$b/$v.json" 2>> "$log"
      strict=$?
      placement=cuda-only
      if [ $strict -ne 0 ]; then
        cp "$work/$b/$v.json" "$work/$b/$v.refused.json"
        placement=cuda+cpu
      fi
    fi
    if [ "$placement" = cuda+cpu ]; then
      # --verbose lets ONNX Runtime's warnings through: whether it put shape arithmetic on the CPU by its own choice.
      "$app" "${args[@]}" --verbose > "$work/$b/$v.json" 2> "$work/$b/$v.placement.log"
      rc=$?
      cat "$work/$b/$v.placement.log" >> "$log"
    elif [ "$placement" != cuda-only ]; then
      "$app" "${args[@]}" > "$work/$b/$v.json" 2>> "$log"
      rc=$?
    fi
    note "$b $v: eval on $placement, exit ${rc:-$strict}"
    printf '%s\t%s\t%s\t%s\t%s\n' "$b" "$v" "$placement" "$(cat "$f" "$f.data" 2>/dev/null | wc -c)" "${rc:-$strict}" >> "$work/evals.tsv"
    report
  done
done

report
tar -C "$work" -czf "$out/results.tar.gz" --exclude='*.onnx' --exclude='*.onnx.data' --exclude='*.calib' . 2>/dev/null
note "wrote $out/gpu.md"
