using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Sessions;

namespace OnnxQuant.Calibrate.Recording;

/// <summary>
/// Fills a session's inputs for a batch of token windows, from the input names and metadata alone: token ids,
/// an all-ones attention mask, positions 0..n-1, zero token types, a zero-length KV cache (past_key_values.* / past.*)
/// and false for boolean cache-branch flags. An input it cannot fill is an error that lists them all.
/// </summary>
public static class InputFeeds
{
    /// <param name="stage">What the run is for: a fixed dimension's hint names that stage's length option.</param>
    public static (List<string> Names, List<OrtValue> Values) Build(IReadOnlyDictionary<string, NodeMetadata> inputs, IReadOnlyList<int[]> batch, string modelLabel,
        RunStage stage = RunStage.Calibration)
    {
        int b = batch.Count, s = batch[0].Length;
        var names = new List<string>();
        var values = new List<OrtValue>();
        try
        {
            foreach (var (name, meta) in inputs)
            {
                names.Add(name);
                values.Add(Create(name, meta, batch, b, s, inputs, modelLabel, stage));
            }
        }
        catch
        {
            foreach (var v in values) v.Dispose();
            throw;
        }
        return (names, values);
    }

    private static OrtValue Create(string name, NodeMetadata meta, IReadOnlyList<int[]> batch, int b, int s,
        IReadOnlyDictionary<string, NodeMetadata> all, string label, RunStage stage)
    {
        string lower = name.ToLowerInvariant();
        if (!meta.IsTensor)
            throw Unfillable(name, "it is not a tensor", all, label);
        if (SequenceLimits.IsTokenInput(name))
            return Integers(meta, new long[] { b, s }, name, all, label, stage, (i, t) => batch[i][t]);
        if (lower.Contains("attention_mask") || lower == "mask")
            return Integers(meta, new long[] { b, s }, name, all, label, stage, (_, _) => 1);
        if (lower.Contains("position_ids"))
            return Integers(meta, new long[] { b, s }, name, all, label, stage, (_, t) => t);
        if (lower.Contains("token_type_ids") || lower.Contains("segment_ids"))
            return Integers(meta, new long[] { b, s }, name, all, label, stage, (_, _) => 0);
        if (lower.StartsWith("past_key_values") || lower.StartsWith("past.") || lower.StartsWith("past_") || lower.Contains(".past_"))
            return EmptyPast(name, meta, b, all, label);
        if (meta.ElementDataType == TensorElementType.Bool)
            return OrtValue.CreateTensorValueFromMemory(new bool[Math.Max(1, FixedCount(meta))], FixedShape(meta, name, all, label));
        if (meta.ElementDataType is TensorElementType.Float or TensorElementType.Float16 or TensorElementType.BFloat16 or TensorElementType.Double)
            throw Unfillable(name, "it takes floating-point values, not token ids, so text cannot feed it; give the model's inputs as arrays with "
                + "--data x.npz (one array per input, named after it, samples along axis 0) and --verify-data y.npz for the held-out check", all, label);
        throw Unfillable(name, "OnnxQuant does not know what to feed it", all, label);
    }

    private static OrtValue Integers(NodeMetadata meta, long[] shape, string name, IReadOnlyDictionary<string, NodeMetadata> all, string label, RunStage stage,
        Func<int, int, int> value)
    {
        if (meta.Dimensions.Length != 2)
            throw Unfillable(name, $"it has {meta.Dimensions.Length} dimensions where [batch, sequence] was expected", all, label);
        int b = (int)shape[0], s = (int)shape[1];
        for (int d = 0; d < 2; d++)
            if (meta.Dimensions[d] > 0 && meta.Dimensions[d] != shape[d])
                throw Unfillable(name, $"its dimension {d} is fixed at {meta.Dimensions[d]} but this run needs {shape[d]} ({(d == 0 ? "one sequence per run" : $"set {OrtFailures.LengthOption(stage)} {meta.Dimensions[d]}")})", all, label);
        switch (meta.ElementDataType)
        {
            case TensorElementType.Int64:
            {
                var data = new long[b * s];
                for (int i = 0; i < b; i++)
                    for (int t = 0; t < s; t++)
                        data[i * s + t] = value(i, t);
                return OrtValue.CreateTensorValueFromMemory(data, shape);
            }
            case TensorElementType.Int32:
            {
                var data = new int[b * s];
                for (int i = 0; i < b; i++)
                    for (int t = 0; t < s; t++)
                        data[i * s + t] = value(i, t);
                return OrtValue.CreateTensorValueFromMemory(data, shape);
            }
            default:
                throw Unfillable(name, $"its element type is {meta.ElementDataType}, not int64 or int32", all, label);
        }
    }

    // The batch axis is the first symbolic dimension; any other symbolic one is the past length and becomes 0.
    private static OrtValue EmptyPast(string name, NodeMetadata meta, int b, IReadOnlyDictionary<string, NodeMetadata> all, string label)
    {
        var shape = new long[meta.Dimensions.Length];
        bool batchSeen = false, pastSeen = false;
        for (int d = 0; d < shape.Length; d++)
        {
            if (meta.Dimensions[d] > 0)
                shape[d] = meta.Dimensions[d];
            else if (!batchSeen && d == 0)
            {
                shape[d] = b;
                batchSeen = true;
            }
            else if (!pastSeen)
            {
                shape[d] = 0;
                pastSeen = true;
            }
            else
                throw Unfillable(name, $"its shape [{string.Join(",", meta.SymbolicDimensions.Select((sym, i) => meta.Dimensions[i] > 0 ? meta.Dimensions[i].ToString() : sym))}] has more than one unknown dimension besides the batch, so OnnxQuant cannot tell which is the past length", all, label);
        }
        if (!pastSeen)
            throw Unfillable(name, "it has no dynamic past-length dimension to set to 0", all, label);
        return meta.ElementDataType switch
        {
            TensorElementType.Float => OrtValue.CreateTensorValueFromMemory(Array.Empty<float>(), shape),
            TensorElementType.Float16 => OrtValue.CreateTensorValueFromMemory(Array.Empty<Float16>(), shape),
            TensorElementType.BFloat16 => OrtValue.CreateTensorValueFromMemory(Array.Empty<BFloat16>(), shape),
            _ => throw Unfillable(name, $"its element type is {meta.ElementDataType}, not a float type", all, label),
        };
    }

    private static int FixedCount(NodeMetadata meta) => meta.Dimensions.Aggregate(1, (n, d) => n * Math.Max(1, d));

    private static long[] FixedShape(NodeMetadata meta, string name, IReadOnlyDictionary<string, NodeMetadata> all, string label) =>
        meta.Dimensions.Select(d => (long)Math.Max(1, d)).ToArray();

    private static OnnxQuantException Unfillable(string name, string why, IReadOnlyDictionary<string, NodeMetadata> all, string label)
    {
        var list = string.Join("; ", all.Select(kv => $"{kv.Key} {kv.Value.ElementDataType}[{Dims(kv.Value)}]"));
        return new OnnxQuantException(label,
            $"cannot fill model input '{name}': {why}. The model's inputs are: {list}. Calibration fills input_ids (from the data), " +
            "attention_mask (ones), position_ids (0..n-1), token_type_ids (zeros), past_key_values.* / past.* (an empty cache) and boolean flags (false); " +
            "other inputs need a model exported with those names", ExitCode.Unsupported);
    }

    private static string Dims(NodeMetadata m) =>
        string.Join(",", m.Dimensions.Select((d, i) => d > 0 ? d.ToString() : (m.SymbolicDimensions.Length > i && m.SymbolicDimensions[i].Length > 0 ? m.SymbolicDimensions[i] : "?")));
}
