namespace OnnxQuant.Bench.Streaming;

/// <summary>One measured pass: how to call the CLI for it.</summary>
public sealed record BenchPass(string Key, string Title, Func<string, string, string[]> Arguments);

/// <summary>The passes the bench runs, each needing no calibration (so ONNX Runtime never loads the model).</summary>
public static class BenchPasses
{
    public static readonly IReadOnlyList<BenchPass> All =
    [
        new("w4", "W4 RTN (MatMulNBits, block 128)", (model, output) => ["awq", model, "--method", "rtn", "--no-verify", "-o", output]),
        new("w8", "W8A8, per-token dynamic activations, no smoothing (MatMulInteger)",
            (model, output) => ["smooth", model, "--alpha", "none", "--format", "dynamic", "--no-verify", "-o", output]),
    ];
}
