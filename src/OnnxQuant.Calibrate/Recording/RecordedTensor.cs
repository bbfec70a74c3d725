using OnnxQuant.Analysis;
using OnnxQuant.IR;

namespace OnnxQuant.Calibrate.Recording;

/// <summary>An activation to record: a tensor read as input A by at least one MatMul/Gemm with a constant weight.</summary>
/// <param name="Name">The tensor's name in the graph.</param>
/// <param name="Channels">Its last dimension (the linears' K).</param>
/// <param name="ElementBytes">Bytes per recorded value (the weight's float width), for the memory estimate.</param>
public sealed record RecordedTensor(string Name, int Channels, int ElementBytes)
{
    /// <summary>
    /// The inputs of the model's quantizable linears (the linear analysis' verdict before any option), in graph order, each
    /// once: main-graph linears and those of If/Loop bodies that read a main-graph value.
    /// </summary>
    public static List<RecordedTensor> FindAll(Graph graph)
    {
        var result = new List<RecordedTensor>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var linear in LinearAnalysis.Analyze(graph, LinearSelection.All).Quantizable)
            if (linear.ActivationCalibrated && seen.Add(linear.Activation))
                result.Add(new RecordedTensor(linear.Activation, linear.K, Math.Max(2, ElementType.SizeOf(linear.WeightType))));
        return result;
    }

    /// <summary>Bytes one token of this tensor takes in a recorded output.</summary>
    public long BytesPerToken => (long)Channels * ElementBytes;

    /// <summary>
    /// Splits <paramref name="tensors"/> into groups whose recorded outputs for one batch fit in <paramref name="budgetBytes"/>;
    /// a tensor larger than the budget on its own gets a group of its own.
    /// </summary>
    public static List<List<RecordedTensor>> Partition(IReadOnlyList<RecordedTensor> tensors, long tokensPerBatch, long budgetBytes)
    {
        var groups = new List<List<RecordedTensor>>();
        var current = new List<RecordedTensor>();
        long used = 0;
        foreach (var t in tensors)
        {
            long bytes = t.BytesPerToken * tokensPerBatch;
            if (current.Count > 0 && used + bytes > budgetBytes)
            {
                groups.Add(current);
                current = new List<RecordedTensor>();
                used = 0;
            }
            current.Add(t);
            used += bytes;
        }
        if (current.Count > 0)
            groups.Add(current);
        return groups;
    }
}
