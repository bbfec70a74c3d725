using Onnx;
using OnnxQuant.IO;

namespace OnnxQuant.Calibrate;

/// <summary>
/// Whether calibration splits the model into block sessions (docs/architecture.md, "Layer-wise calibration"). Splitting
/// bounds what ONNX Runtime holds to one block's weights, which a large model needs; a small one pays for it in the
/// blocks' session overhead and the carried values instead (2-layer tiny-llama: 177 MiB peak whole, 367 MiB split).
/// </summary>
public static class CalibrationSplit
{
    /// <summary>The whole graph is one session while its weights take at most this fraction of the available memory.</summary>
    public const double WholeGraphFraction = 0.125;

    /// <summary>Whole graph when the weights as a CPU session holds them fit <see cref="WholeGraphFraction"/> of <paramref name="availableBytes"/>; blocks otherwise, or when the memory is not known.</summary>
    public static CalibrationSessions Choose(OnnxModel model, long? availableBytes) =>
        availableBytes is { } available && SessionBytes(model) <= WholeGraphFraction * available ? CalibrationSessions.WholeGraph : CalibrationSessions.Layers;

    /// <summary>Initializer bytes, fp16/bf16 counted twice (the CPU provider also holds fp32 copies of them); read from the graph, no weight is read.</summary>
    public static long SessionBytes(OnnxModel model)
    {
        long bytes = 0;
        foreach (var t in model.Graph.Initializers.Values)
            bytes += t.DataType is TensorProto.Types.DataType.Float16 or TensorProto.Types.DataType.Bfloat16 ? 2 * t.ByteLength : t.ByteLength;
        return bytes;
    }

    /// <summary>MemAvailable from /proc/meminfo; null where there is none.</summary>
    public static long? AvailableBytes() => Sessions.AvailableMemory.Bytes();
}
