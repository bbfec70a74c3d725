using Onnx;
using OnnxQuant.IO;

namespace OnnxQuant.Calibrate.Verification;

/// <summary>
/// Whether the original and the emitted model fit in memory together, checked before the verification opens them:
/// past the model is written, an out-of-memory kill would end the command without its summary. A CPU session holds
/// each initializer once, and fp16 / bf16 ones twice over (the CPU provider computes most ops in fp32 and folds a
/// cast into the weights: a 4-layer 7B-wide fp16 model and its W4 output, 3.1 GB on disk, held 5.3 GB as sessions).
/// </summary>
internal static class PairMemory
{
    /// <summary>Headroom above the estimate for the runtime, activations and this process.</summary>
    private const double Margin = 1.1;

    /// <summary>
    /// Throws <see cref="OnnxQuantException"/> (the caller's "did not run") when both models need more than
    /// <paramref name="availableBytes"/> (<see cref="AvailableBytes"/>; null: not known, no check).
    /// </summary>
    public static void EnsureFits(string originalPath, string emittedPath, string what, long? availableBytes)
    {
        if (availableBytes is not { } available)
            return;
        long needed = (long)(Margin * (SessionBytes(originalPath) + SessionBytes(emittedPath)));
        if (needed > available)
            throw new OnnxQuantException(emittedPath,
                $"{what} needs both models in ONNX Runtime at once, about {Gb(needed)} GB (fp16 weights held as fp32), and " +
                $"{Gb(available)} GB of memory is available. Compare them where there is more with `onnxquant eval {emittedPath} " +
                $"--reference {originalPath}`, or leave the check out with --no-verify", ExitCode.Unsupported);
    }

    /// <summary>What a CPU session of the model holds for its initializers (read from the graph; no weight is read).</summary>
    public static long SessionBytes(string modelPath)
    {
        using var model = ModelFile.Load(modelPath);
        long bytes = 0;
        foreach (var t in model.Graph.Initializers.Values)
            bytes += t.DataType is TensorProto.Types.DataType.Float16 or TensorProto.Types.DataType.Bfloat16 ? 2 * t.ByteLength : t.ByteLength;
        return bytes;
    }

    /// <summary>MemAvailable from /proc/meminfo; null where there is none.</summary>
    public static long? AvailableBytes() => Sessions.AvailableMemory.Bytes();

    private static string Gb(long bytes) => (bytes / 1e9).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);
}
