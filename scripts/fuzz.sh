#!/usr/bin/env bash
# Coverage-guided fuzzing of the readers (docs/security.md, "Fuzzing"): afl-fuzz (Debian afl++) drives the SharpFuzz
# harnesses of tests/OnnxQuant.Fuzz over the instrumented OnnxQuant.Passes, OnnxQuant.Calibrate and
# Microsoft.ML.Tokenizers.
#
#   bash scripts/fuzz.sh SECONDS [TARGET...]     each target for SECONDS, one after another (default: all of them)
#
# Findings go to $FUZZ_OUT/findings/TARGET (FUZZ_OUT defaults to artifacts/fuzz; the suite's smoke run uses its own). One line per target: executions, paths, crashes, hangs. Exits 1 when
# any target saved a crash or a hang (replay one with: dotnet $FUZZ_OUT/bin/onnxquant-fuzz.dll replay TARGET FILE),
# 3 when afl-fuzz or the sharpfuzz tool is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:?usage: bash scripts/fuzz.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(onnx genai-config recipe npy npz tokenizer data)

if ! command -v afl-fuzz >/dev/null; then
  echo "afl-fuzz is not installed: apt-get install afl++" >&2
  exit 3
fi
if ! dotnet tool run sharpfuzz >/dev/null 2>&1 && ! dotnet tool restore >/dev/null; then
  echo "the sharpfuzz tool is not installed: dotnet tool restore (dotnet-tools.json names SharpFuzz.CommandLine)" >&2
  exit 3
fi

# A fresh publish each run: instrumenting rewrites the assemblies in place, so they are never the build's own.
out=${FUZZ_OUT:-artifacts/fuzz}
bin=$out/bin
rm -rf "$bin"
dotnet publish tests/OnnxQuant.Fuzz -c Release -o "$bin" -nologo -clp:ErrorsOnly >/dev/null
for assembly in OnnxQuant.Passes OnnxQuant.Calibrate Microsoft.ML.Tokenizers; do
  dotnet tool run sharpfuzz "$bin/$assembly.dll" >/dev/null
done

# afl-fuzz's log is kept to its first megabyte: a target that makes it warn on every execution would fill the disk.
# afl-fuzz's checks that do not apply: the target is `dotnet` (instrumented in its assemblies, not its binary), and a
# container may not let it set the core pattern, the CPU governor or the affinity.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
export AFL_FORKSRV_INIT_TMOUT=60000 DOTNET_TieredPGO=0

# One afl-fuzz run of $target into $findings.
run_afl() {
  rm -rf "$findings/default"
  afl-fuzz -V "$seconds" -t 5000 -m none "${dict_args[@]}" -i "tests/OnnxQuant.Fuzz/corpus/$target" -o "$findings" \
    -- dotnet "$bin/onnxquant-fuzz.dll" "$target" 2>&1 | { head -c 1000000 >"$findings/afl.log"; cat >/dev/null; }
}

status=0
for target in "${targets[@]}"; do
  findings=$out/findings/$target
  rm -rf "$findings"
  mkdir -p "$findings"
  # -x: the keys and tokens of a JSON format, which the fuzzer would hardly guess byte by byte.
  # -t: a hang is an input that takes over 5 s (a .NET start and a model load take well under one).
  dict=tests/OnnxQuant.Fuzz/dict/$target.dict
  dict_args=()
  [ -f "$dict" ] && dict_args=(-x "$dict")
  # On a loaded machine afl-fuzz's start-up check has once seen no coverage from the first input ("No
  # instrumentation detected"); a second start is the retry. A harness that fails twice is reported.
  run_afl || run_afl || {
      echo "$target: afl-fuzz failed ($findings/afl.log):" >&2
      tail -5 "$findings/afl.log" >&2
      status=1
      continue
    }
  stats=$findings/default/fuzzer_stats
  stat() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
  crashes=$(stat saved_crashes); hangs=$(stat saved_hangs)
  echo "$target: $(stat execs_done) executions, $(stat corpus_count) paths, $crashes crashes, $hangs hangs ($(stat execs_per_sec) per second)"
  if [ "${crashes:-0}" != 0 ] || [ "${hangs:-0}" != 0 ]; then
    (ls "$findings"/default/crashes/id:* "$findings"/default/hangs/id:* 2>/dev/null || true) | sed "s/^/  /" >&2
    status=1
  fi
done
exit $status
