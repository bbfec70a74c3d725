using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxQuant.Tests.Support;

/// <summary>One input value for <see cref="OrtRunner"/>: int64 or float data with its shape.</summary>
public sealed record OrtFeed(long[] Shape, long[]? Int64s = null, float[]? Floats = null)
{
    public static OrtFeed Int64(long[] values, params long[] shape) => new(shape, Int64s: values);

    /// <summary>Float data; sent as fp16 when the model's input is fp16.</summary>
    public static OrtFeed Float(float[] values, params long[] shape) => new(shape, Floats: values);
}

/// <summary>One output of a run, converted to float32 whatever the model's float type.</summary>
public sealed record OrtResult(string Name, float[] Values, long[] Shape)
{
    public int Dim(int axis) => (int)Shape[axis];
}

/// <summary>
/// Runs a model in ONNX Runtime's CPU provider, one thread, at an explicit graph optimisation level (results differ
/// slightly between levels: docs/architecture.md, "ONNX Runtime on the CPU"). Reusable for several runs of the same model.
/// </summary>
public sealed class OrtRunner : IDisposable
{
    private readonly InferenceSession _session;

    public OrtRunner(string modelPath, GraphOptimizationLevel level = GraphOptimizationLevel.ORT_ENABLE_BASIC)
    {
        using var options = Options(level);
        _session = new InferenceSession(modelPath, options);
    }

    public OrtRunner(byte[] model, GraphOptimizationLevel level = GraphOptimizationLevel.ORT_ENABLE_BASIC)
    {
        using var options = Options(level);
        _session = new InferenceSession(model, options);
    }

    public IReadOnlyList<string> InputNames => _session.InputNames;

    public IReadOnlyList<string> OutputNames => _session.OutputNames;

    /// <summary>One-shot: load <paramref name="modelPath"/>, run, dispose.</summary>
    public static Dictionary<string, OrtResult> RunOnce(string modelPath, IReadOnlyDictionary<string, OrtFeed> feeds,
        GraphOptimizationLevel level = GraphOptimizationLevel.ORT_ENABLE_BASIC)
    {
        using var runner = new OrtRunner(modelPath, level);
        return runner.Run(feeds);
    }

    /// <summary>Runs with <paramref name="feeds"/> and returns the requested outputs (all when null) by name.</summary>
    public Dictionary<string, OrtResult> Run(IReadOnlyDictionary<string, OrtFeed> feeds, IReadOnlyCollection<string>? outputs = null)
    {
        outputs ??= _session.OutputNames;
        var values = new List<OrtValue>();
        try
        {
            var names = new List<string>();
            foreach (var (name, feed) in feeds)
            {
                if (!_session.InputMetadata.TryGetValue(name, out var meta))
                    throw new ArgumentException($"the model has no input '{name}' (inputs: {string.Join(", ", _session.InputNames)})");
                names.Add(name);
                values.Add(ToOrtValue(feed, meta.ElementDataType));
            }
            using var runOptions = new RunOptions();
            using var results = _session.Run(runOptions, names, values, outputs);
            var byName = new Dictionary<string, OrtResult>(StringComparer.Ordinal);
            int k = 0;
            foreach (var name in outputs)
                byName[name] = FromOrtValue(name, results[k++]);
            return byName;
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    public void Dispose() => _session.Dispose();

    private static SessionOptions Options(GraphOptimizationLevel level) => new()
    {
        GraphOptimizationLevel = level,
        IntraOpNumThreads = 1,
        InterOpNumThreads = 1,
        LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
    };

    private static OrtValue ToOrtValue(OrtFeed feed, TensorElementType type)
    {
        switch (type)
        {
            case TensorElementType.Int64 when feed.Int64s is not null:
                return OrtValue.CreateTensorValueFromMemory(feed.Int64s, feed.Shape);
            case TensorElementType.Float when feed.Floats is not null:
                return OrtValue.CreateTensorValueFromMemory(feed.Floats, feed.Shape);
            case TensorElementType.Float16 when feed.Floats is not null:
                var halves = new Float16[feed.Floats.Length];
                for (int i = 0; i < halves.Length; i++)
                    halves[i] = new Float16(BitConverter.HalfToUInt16Bits((Half)feed.Floats[i]));
                return OrtValue.CreateTensorValueFromMemory(halves, feed.Shape);
            default:
                throw new ArgumentException($"cannot feed {(feed.Int64s is null ? "float" : "int64")} data to a {type} input");
        }
    }

    private static OrtResult FromOrtValue(string name, OrtValue value)
    {
        var info = value.GetTensorTypeAndShape();
        float[] data = info.ElementDataType switch
        {
            TensorElementType.Float => value.GetTensorDataAsSpan<float>().ToArray(),
            TensorElementType.Float16 => Widen(MemoryMarshal.Cast<Float16, Half>(value.GetTensorDataAsSpan<Float16>())),
            TensorElementType.Int64 => value.GetTensorDataAsSpan<long>().ToArray().Select(x => (float)x).ToArray(),
            var t => throw new NotSupportedException($"output '{name}' is {t}"),
        };
        return new OrtResult(name, data, info.Shape);
    }

    private static float[] Widen(ReadOnlySpan<Half> halves)
    {
        var result = new float[halves.Length];
        for (int i = 0; i < result.Length; i++) result[i] = (float)halves[i];
        return result;
    }
}
