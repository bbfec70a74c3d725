#!/usr/bin/env bash
# The GPU check (docs/gpu-check.md): publish the CLI with the CUDA ONNX Runtime here, carry it to a GPU machine with no
# dotnet and no network in parts, and there calibrate/smooth/awq with --device cuda, run every emitted model on the
# CUDA EP with CPU fallback disabled, time prefill and a 1-token forward, and write bench/results/gpu.md.
#
#   bash scripts/gpu-check.sh stage      here: publish, prune, xz, split into parts; prints the device calls to make
#   bash scripts/gpu-check.sh receive    there, every call: move the carried parts out of the tree, checked
#   bash scripts/gpu-check.sh run        there, last call: reassemble, check the GPU, run, write $OUT/gpu.md
#
# Without a CUDA device or driver, `run` prints one line and exits 0 (CI and this machine). GPU_CHECK_DEVICE=cpu runs
# the same pipeline on the CPU here (a rehearsal: the timings are not a GPU's). Exit codes as the CLI's: 2 usage,
# 3 a part or the payload is missing or damaged, 5 cannot write, 1 anything else.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
stage_dir=${GPU_CHECK_DIR:-$repo/.device/gpu-check}        # ignored (.gitignore: /.device/)
stash=${GPU_CHECK_STASH:-/tmp/onnxquant-gpu-check}          # outside the tree, kept while the device machine is warm
payload=onnxquant-linux-x64.tar.xz
tree_limit=$((64 * 1024 * 1024))                            # what one device call may carry, tracked files included

say() { echo "gpu-check: $*"; }
die() { echo "gpu-check: $2" >&2; exit "$1"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
rel() { realpath --relative-to="$repo" "$1"; }

# Bytes a device call carries besides the parts: tracked and untracked-not-ignored files, and shared/ (device README).
tree_bytes() {
  (cd "$repo" && { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 -r stat -c %s 2>/dev/null |
    awk '{ n += $1 } END { print n + 0 }')
}

# Part size: GPU_CHECK_PART_BYTES, else what is left of a call's 64 MiB after the tree, less 1 MiB for the manifest.
part_bytes() {
  if [ -n "${GPU_CHECK_PART_BYTES:-}" ]; then echo "$GPU_CHECK_PART_BYTES"; return; fi
  local left=$(( (tree_limit - $(tree_bytes)) / 1048576 - 1 ))
  [ "$left" -ge 4 ] || die 5 "the tree alone takes nearly a call's 64 MiB; only ${left} MiB would be left for a part"
  echo $(( left * 1048576 ))
}

# What the GPU run does not need, so it does not travel: TensorRT's provider, symbols, debugger helpers, translations.
prune() {
  local dir=$1 d
  rm -f "$dir"/libonnxruntime_providers_tensorrt.so "$dir"/*.pdb "$dir"/libmscordaccore.so "$dir"/libmscordbi.so "$dir"/createdump
  for d in "$dir"/*/; do
    [ -d "$d" ] || continue
    [ -n "$(find "$d" -type f ! -name '*.resources.dll' -print -quit)" ] || rm -rf "$d"
  done
}

# split FILE DIR BYTES: DIR/part-NN of at most BYTES each, and DIR/manifest with the file's and each part's sha256.
split_payload() {
  local file=$1 dir=$2 bytes=$3
  rm -f "$dir"/part-* "$dir"/manifest
  split -b "$bytes" -d -a 2 "$file" "$dir/part-"
  {
    echo "payload $(basename "$file") $(sha "$file") $(size "$file")"
    for p in "$dir"/part-*; do echo "part $(basename "$p") $(sha "$p") $(size "$p")"; done
  } > "$dir/manifest.tmp"
  mv "$dir/manifest.tmp" "$dir/manifest"
}

# Folders holding CUDA 13's runtime, cuBLAS, cuRAND and cuDNN 9, which the CUDA provider loads: wherever the image keeps
# them (the toolkit, or pip's nvidia-* wheels beside PyTorch), not on the default library path there.
cuda_libdirs() {
  { find /usr/local /opt /usr/lib /usr/lib64 -xdev \( -name 'libcublasLt.so.13*' -o -name 'libcudart.so.13*' \
    -o -name 'libcurand.so.10*' -o -name 'libcudnn.so.9*' -o -name 'libcufft.so.12*' \) -printf '%h\n' 2>/dev/null || true; } |
    sort -u | paste -sd:
}

# What the first call learns before the rest are sent: a GPU, and the libraries the CUDA provider needs.
probe() {
  local gpu libs
  gpu=$( (nvidia-smi -L 2>/dev/null || true) | head -1)
  libs=$(cuda_libdirs | tr ':' '\n' | xargs -r -I{} find {} -maxdepth 1 -name 'lib*.so.*' -printf '%f\n' 2>/dev/null |
    grep -oE '^lib(cublasLt|cudart|curand|cudnn)\.so\.[0-9]+' | sort -u | paste -sd' ' || true)
  say "GPU: ${gpu:-none}; CUDA libraries found: ${libs:-none} (the run needs libcublasLt.so.13 libcudart.so.13 libcudnn.so.9 libcurand.so.10)"
}

# receive FROM TO: move FROM's parts that the manifest names to TO, each checked; say what TO holds and lacks.
receive() {
  local from=$1 to=$2
  [ -f "$from/manifest" ] || die 3 "no manifest in $from: carry it with every part (bash scripts/gpu-check.sh stage prints the calls)"
  [ -f "$to/manifest" ] || probe
  mkdir -p "$to"
  cp "$from/manifest" "$to/manifest"
  local name want got have=() lacking=()
  while read -r kind name want _; do
    [ "$kind" = part ] || continue
    if [ -f "$from/$name" ]; then
      got=$(sha "$from/$name")
      [ "$got" = "$want" ] || die 3 "$name arrived damaged (sha256 $got, manifest $want); carry it again"
      mv "$from/$name" "$to/$name"
    fi
    if [ -f "$to/$name" ]; then have+=("${name#part-}"); else lacking+=("${name#part-}"); fi
  done < "$to/manifest"
  say "holds ${#have[@]} of $(( ${#have[@]} + ${#lacking[@]} )) parts in $to${lacking[*]:+; still to carry: ${lacking[*]}}"
}

# join DIR FILE: the parts in order into FILE, checked against the manifest; exit 3 naming what is missing or damaged.
join_parts() {
  local dir=$1 out=$2 kind name want bytes missing=()
  [ -f "$dir/manifest" ] || die 3 "no manifest in $dir: nothing was received"
  while read -r kind name want bytes; do
    if [ "$kind" = part ] && [ ! -f "$dir/$name" ]; then missing+=("$name"); fi
  done < "$dir/manifest"
  [ ${#missing[@]} -eq 0 ] || die 3 "missing ${missing[*]} in $dir: carry them first (bash scripts/gpu-check.sh receive)"
  read -r kind name want bytes < <(grep '^payload ' "$dir/manifest")
  grep '^part ' "$dir/manifest" | while read -r _ p _ _; do cat "$dir/$p"; done > "$out.tmp"
  [ "$(sha "$out.tmp")" = "$want" ] || { rm -f "$out.tmp"; die 3 "the joined payload's sha256 differs from the manifest's"; }
  mv "$out.tmp" "$out"
}

unxz_stream() { if command -v xz >/dev/null; then xz -dc; else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.stdin.buffer), sys.stdout.buffer)'; fi; }

# unpack DIR TARGET: join DIR's parts and extract the published CLI into TARGET/publish (once per payload).
unpack() {
  local dir=$1 target=$2 want
  want=$(awk '$1 == "payload" { print $3 }' "$dir/manifest" 2>/dev/null || true)
  if [ -n "$want" ] && [ "$(cat "$target/.payload" 2>/dev/null)" = "$want" ]; then return; fi
  mkdir -p "$target"
  join_parts "$dir" "$target/$payload"
  rm -rf "$target/publish"
  unxz_stream < "$target/$payload" | tar -x -C "$target"
  rm -f "$target/$payload"
  echo "$want" > "$target/.payload"
}

stage() {
  mkdir -p "$stage_dir"
  local started=$SECONDS publish=${GPU_CHECK_PUBLISHED:-}
  if [ -z "$publish" ]; then
    publish=$stage_dir/publish
    rm -rf "$publish"
    # OnnxQuantOrt=gpu-linux: the CUDA ONNX Runtime (docs/architecture.md, "Distribution"); self-contained: no dotnet there.
    dotnet publish "$repo/src/OnnxQuant.Cli" -c Release -r linux-x64 --self-contained -p:OnnxQuantOrt=gpu-linux \
      -o "$publish" -nologo -clp:ErrorsOnly
  fi
  [ -x "$publish/onnxquant" ] || die 3 "$publish holds no onnxquant executable"
  local work=$stage_dir/pack
  rm -rf "$work" && mkdir -p "$work" && cp -a "$publish" "$work/publish"
  prune "$work/publish"
  tar -C "$work" -cf - publish | xz -9 -T"${GPU_CHECK_XZ_THREADS:-0}" > "$stage_dir/$payload"
  rm -rf "$work"
  local bytes
  bytes=$(part_bytes)
  split_payload "$stage_dir/$payload" "$stage_dir" "$bytes"
  rm -f "$stage_dir/$payload"
  local parts=("$stage_dir"/part-*) total=0 p
  for p in "${parts[@]}"; do total=$((total + $(size "$p"))); done
  say "staged $(du -sm "$publish" | cut -f1) MiB published as ${#parts[@]} part(s) of at most $((bytes / 1048576)) MiB ($((total / 1048576)) MiB xz) in $(rel "$stage_dir") in $((SECONDS - started)) s"
  echo "Device calls, one after another while the machine stays warm (run tool; the working tree travels with each):"
  local i=0 last=$((${#parts[@]} - 1)) cmd
  for p in "${parts[@]}"; do
    cmd="bash scripts/gpu-check.sh receive"
    [ $i -eq $last ] && cmd="$cmd && bash scripts/gpu-check.sh run"
    echo "  $((i + 1)). command: \"$cmd\"  carry: [\"$(rel "$stage_dir")/manifest\", \"$(rel "$p")\"]$([ $i -eq $last ] && echo '  timeout_s: 540' || echo '  timeout_s: 60')"
    i=$((i + 1))
  done
}

# No CUDA here: one line, exit 0 (the check has nothing to run; it is not a failure of the code under test).
have_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; }

run() {
  local device=${GPU_CHECK_DEVICE:-cuda}
  if [ "$device" = cuda ] && ! have_gpu; then
    say "no CUDA device or driver found (nvidia-smi missing or lists no GPU); nothing to run"
    return 0
  fi
  local out=${OUT:-$stage_dir/out} from=$stash
  # A rehearsal here reads the parts where stage left them.
  [ -f "$from/manifest" ] || from=$stage_dir
  mkdir -p "$out" || die 5 "cannot create $out"
  unpack "$from" "$stash"
  GPU_CHECK_LIBDIRS=$( [ "$device" = cuda ] && cuda_libdirs) GPU_CHECK_APP=$stash/publish/onnxquant GPU_CHECK_WORK=$stash/work GPU_CHECK_OUT=$out GPU_CHECK_DEVICE=$device \
    GPU_CHECK_REPO=$repo bash "$repo/scripts/gpu-check/measure.sh"
}

case "${1:-}" in
  stage) stage ;;
  receive) receive "$stage_dir" "$stash" ;;
  run) run ;;
  # The pieces, for the tests (tests/OnnxQuant.Tests/Cli/GpuCheckScriptTests.cs) and for staging by hand.
  split) [ $# -eq 4 ] || die 2 "usage: gpu-check.sh split FILE DIR BYTES"; split_payload "$2" "$3" "$4" ;;
  join) [ $# -eq 3 ] || die 2 "usage: gpu-check.sh join DIR FILE"; join_parts "$2" "$3" ;;
  unpack) [ $# -eq 3 ] || die 2 "usage: gpu-check.sh unpack DIR TARGET"; unpack "$2" "$3" ;;
  part-bytes) part_bytes ;;
  *) die 2 "usage: bash scripts/gpu-check.sh stage|receive|run (docs/gpu-check.md)" ;;
esac
