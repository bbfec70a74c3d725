using System.Globalization;
using OnnxQuant.IO;
using OnnxQuant.IR;

namespace OnnxQuant.Analysis;

/// <summary>
/// Checks a loaded model before anything computes on it, so a broken model fails in the first second with a message
/// about the model rather than deep inside ONNX Runtime or, worse, after writing a quantized model that cannot run:
/// opsets newer than any released ONNX, linears whose weight type or row count disagrees with their activation, and
/// non-finite weights (checked where weights are read, see <see cref="EnsureFinite"/>).
/// </summary>
public static class ModelChecks
{
    /// <summary>The newest default-domain opset ONNX Runtime 1.31 accepts (checked here: 26 passes its opset validation, 27 is refused).</summary>
    public const long NewestOnnxOpset = 26;

    /// <summary>Throws <see cref="OnnxQuantException"/> naming the model file and the first problem found.</summary>
    public static void EnsureComputable(OnnxModel model)
    {
        string? file = model.SourcePath;
        if (model.OpsetVersion("") is { } opset && opset > NewestOnnxOpset)
            throw new OnnxQuantException(file,
                $"imports ONNX opset {opset}, newer than any opset ONNX Runtime knows (the newest is {NewestOnnxOpset}); re-export the model with opset {NewestOnnxOpset} or older",
                ExitCode.Unsupported);

        var graph = model.Graph;
        var facts = ValueFacts.Infer(graph);
        var linears = LinearNode.FindAll(graph);
        foreach (var linear in linears)
        {
            if (facts.TypeOf(linear.Activation) is { } activationType && ElementType.IsFloat(activationType) && activationType != linear.WeightType)
                throw new OnnxQuantException(file,
                    $"{linear.OpType} '{linear.Name}' multiplies a {ElementType.Name(activationType)} activation by weight '{linear.WeightName}' stored as {ElementType.Name(linear.WeightType)}; " +
                    "both must have one type (was the model only partly converted to another precision?)");
            if (facts.ChannelsOf(linear.Activation) is { } channels && channels != linear.K)
                throw new OnnxQuantException(file,
                    $"{linear.OpType} '{linear.Name}' has weight '{linear.WeightName}' with {Text(linear.K)} input rows ({linear.K}x{linear.N}), but its activation '{linear.Activation}' has {Text(channels)} channels; the weight's shape does not fit the graph");
        }
        foreach (var group in linears.GroupBy(l => l.Activation, StringComparer.Ordinal))
        {
            var sizes = group.Select(l => l.K).Distinct().ToList();
            if (sizes.Count > 1)
            {
                var odd = group.GroupBy(l => l.K).OrderBy(g => g.Count()).First().First();
                var usual = group.First(l => l.K != odd.K);
                throw new OnnxQuantException(file,
                    $"{odd.OpType} '{odd.Name}' has weight '{odd.WeightName}' with {Text(odd.K)} input rows ({odd.K}x{odd.N}), but '{usual.Name}', which reads the same activation, has {Text(usual.K)}; the weight's shape does not fit the graph");
            }
        }
    }

    /// <summary>
    /// Throws when <paramref name="values"/> (a weight just read for quantization) holds NaN or Inf: quantizing it would
    /// spread the damage over whole blocks and channels and give a model that runs but answers garbage.
    /// </summary>
    public static void EnsureFinite(ReadOnlySpan<float> values, string tensorName, string? modelFile, string reader)
    {
        // The vectorised test settles the usual case; only a bad weight is walked element by element to describe it.
        if (System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(values))
            return;
        int nan = 0, inf = 0, first = -1;
        for (int i = 0; i < values.Length; i++)
        {
            float v = values[i];
            if (float.IsFinite(v))
                continue;
            if (float.IsNaN(v)) nan++; else inf++;
            if (first < 0) first = i;
        }
        if (first >= 0)
            throw new OnnxQuantException(modelFile,
                $"weight '{tensorName}' (read by {reader}) holds {nan} NaN and {inf} Inf value(s), the first at element {first}; quantizing it would give a model that runs but answers garbage. Fix or re-export the weights");
    }

    private static string Text(long value) => value.ToString(CultureInfo.InvariantCulture);
}
