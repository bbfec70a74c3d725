using OnnxQuant.IO;
using OnnxQuant.IR;

namespace OnnxQuant.Calibrate.Recording;

/// <summary>An activation to record: a tensor read as input A by at least one MatMul/Gemm with a constant weight.</summary>
/// <param name="Name">The tensor's name in the graph.</param>
/// <param name="Channels">Its last dimension (the linears' K).</param>
/// <param name="ElementBytes">Bytes per recorded value (the weight's float width), for the memory estimate.</param>
public sealed record RecordedTensor(string Name, int Channels, int ElementBytes)
{
    /// <summary>The inputs of the graph's quantizable linears, in graph order, each once.</summary>
    public static List<RecordedTensor> FindAll(Graph graph)
    {
        var result = new List<RecordedTensor>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
        {
            if (!(node.IsOnnx("MatMul") || node.IsOnnx("Gemm")) || node.Input.Count < 2)
                continue;
            if (node.IsOnnx("Gemm") && node.GetInt("transA", 0) != 0)
                continue;
            var weight = graph.GetConstant(node.Input[1]);
            if (weight is null || weight.Shape.Count != 2 || !ElementType.IsFloat(weight.DataType))
                continue;
            string activation = node.Input[0];
            if (graph.GetConstant(activation) is not null || !seen.Add(activation))
                continue;
            bool transB = node.IsOnnx("Gemm") && node.GetInt("transB", 0) != 0;
            long k = transB ? weight.Shape[1] : weight.Shape[0];
            result.Add(new RecordedTensor(activation, checked((int)k), Math.Max(2, ElementType.SizeOf(weight.DataType))));
        }
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
