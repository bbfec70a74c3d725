// Runs an ONNX model in onnxruntime-node (an ONNX Runtime consumer independent of the C# bindings) and prints its
// outputs as JSON. Usage: node run.js model.onnx feeds.json  (feeds: {name: {type: "int64"|"float32", dims: [..], data: [..]}})
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

// fp16 outputs may come back as raw 16-bit patterns.
function halfToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * Math.pow(2, -14) * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * Math.pow(2, exp - 15) * (1 + frac / 1024);
}

async function main() {
  const [modelPath, feedsPath] = process.argv.slice(2);
  if (!modelPath || !feedsPath) {
    console.error('usage: node run.js model.onnx feeds.json');
    process.exit(2);
  }
  const spec = JSON.parse(fs.readFileSync(feedsPath, 'utf8'));
  const feeds = {};
  for (const [name, t] of Object.entries(spec)) {
    const data = t.type === 'int64' ? BigInt64Array.from(t.data.map(BigInt))
      : t.type === 'bool' ? Uint8Array.from(t.data) : Float32Array.from(t.data);
    feeds[name] = new ort.Tensor(t.type, data, t.dims);
  }
  // Same optimisation level as the C# side compares at (fusions move rounding, reference.md §8).
  const session = await ort.InferenceSession.create(modelPath, { graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
  const results = await session.run(feeds);
  const out = {};
  for (const [name, t] of Object.entries(results)) {
    const data = t.type === 'float16' && t.data instanceof Uint16Array ? Array.from(t.data, halfToFloat) : Array.from(t.data, Number);
    out[name] = { type: t.type, dims: Array.from(t.dims), data };
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  console.error(`onnxruntime-node: ${e.message}`);
  process.exit(1);
});
