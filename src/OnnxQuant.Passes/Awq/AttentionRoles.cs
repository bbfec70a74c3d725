using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.IR;

namespace OnnxQuant.Awq;

/// <summary>
/// Tells whether a linear computes attention queries or keys. AWQ skips the clip search for those: their errors pass
/// through q·kᵀ and the softmax, which the per-block output error does not see.
/// </summary>
public static class AttentionRoles
{
    private const int MaxHops = 16;

    private static readonly string[] QueryKeyNames = ["q_proj", "k_proj", "qkv_proj", "query", "key", "/q/", "/k/", "c_attn"];

    /// <summary>
    /// True for a query/key projection: by its name (q_proj, k_proj, query, key, packed qkv), by feeding input 0/1 of a
    /// com.microsoft attention op, or by flowing (through reshapes, transposes, rotary arithmetic) into a MatMul of two
    /// activations whose output goes to a Softmax.
    /// </summary>
    public static bool IsQueryOrKey(Graph graph, LinearNode linear)
    {
        string name = linear.Name.ToLowerInvariant();
        if (QueryKeyNames.Any(n => name.Contains(n, StringComparison.Ordinal)))
            return true;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var frontier = new Queue<(string Value, int Hops)>();
        frontier.Enqueue((linear.Output, 0));
        while (frontier.TryDequeue(out var item))
        {
            if (!seen.Add(item.Value) || item.Hops > MaxHops)
                continue;
            foreach (var reader in graph.Consumers(item.Value))
            {
                if (IsAttentionOp(reader))
                {
                    int index = reader.Input.IndexOf(item.Value);
                    if (index is 0 or 1)
                        return true;
                    continue;
                }
                if (reader.IsOnnx("MatMul") || reader.IsOnnx("Gemm"))
                {
                    if (IsScoreProduct(graph, reader))
                        return true;
                    continue;
                }
                if (reader.IsOnnx("Softmax"))
                    continue;
                foreach (var o in reader.Output)
                    if (o.Length > 0)
                        frontier.Enqueue((o, item.Hops + 1));
            }
        }
        return false;
    }

    private static bool IsAttentionOp(NodeProto node) =>
        node.IsMicrosoft("GroupQueryAttention") || node.IsMicrosoft("MultiHeadAttention") || node.IsMicrosoft("Attention")
        || node.IsOnnx("Attention");

    // q·kᵀ: a product of two computed tensors whose result reaches a Softmax through a few elementwise steps (scale, mask).
    private static bool IsScoreProduct(Graph graph, NodeProto matmul)
    {
        if (matmul.Input.Count < 2 || graph.GetConstant(matmul.Input[0]) is not null || graph.GetConstant(matmul.Input[1]) is not null)
            return false;
        var value = matmul.Output[0];
        for (int hop = 0; hop < 6; hop++)
        {
            var readers = graph.Consumers(value);
            if (readers.Any(r => r.IsOnnx("Softmax")))
                return true;
            var next = readers.FirstOrDefault(r => r.IsOnnx("Div") || r.IsOnnx("Mul") || r.IsOnnx("Add") || r.IsOnnx("Cast")
                || r.IsOnnx("Where") || r.IsOnnx("Reshape") || r.IsOnnx("Sub"));
            if (next is null)
                return false;
            value = next.Output[0];
        }
        return false;
    }
}
