using Onnx;
using OnnxQuant.IR;

namespace OnnxQuant.Analysis;

/// <summary>A token embedding: a rank-2 float initializer and the Gathers (axis 0) that index it with token ids.</summary>
public sealed record TokenEmbedding(string Table, int Rows, int Width, TensorProto.Types.DataType Type, IReadOnlyList<NodeProto> Gathers);

/// <summary>
/// The LM head as the embeddings and head pass sees it: the node, its logical [K, N] weight's source, and whether that
/// weight is the token embedding transposed (a tied head: the MatMul reads Transpose(table), or Gemm reads the table with transB = 1).
/// </summary>
public sealed record LmHead(LinearCandidate Candidate, WeightChain Chain, string? TiedTo);

/// <summary>
/// A token embedding as `inspect` shows it: a float Gather's table, or a GatherBlockQuantized with its bits and block
/// size; bytes are the table's, or the codes', scales' and zero points'.
/// </summary>
public sealed record EmbeddingSummary(string Node, string Table, int Rows, int Width, string Form, int? Bits, int? BlockSize, long Bytes);

/// <summary>Finds the token embedding and the LM head a graph's vocabulary tables live in.</summary>
public static class TokenTables
{
    /// <summary>
    /// Tables a Gather (axis 0) indexes with (a cast of) a token-id graph input — the rule `calibrate` uses to feed ids —
    /// stored as fp32 or fp16 initializers of rank 2.
    /// </summary>
    public static IReadOnlyList<TokenEmbedding> Embeddings(Graph graph)
    {
        var tokenInputs = graph.Inputs.Where(i => SequenceLimits.IsTokenInput(i.Name)).Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var byTable = new Dictionary<string, List<NodeProto>>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
        {
            if (!node.IsOnnx("Gather") || node.Input.Count != 2 || node.GetInt("axis", 0) != 0)
                continue;
            if (!tokenInputs.Contains(graph.StripCasts(node.Input[1])) || !IsFloatTable(graph.GetInitializer(node.Input[0])))
                continue;
            if (!byTable.TryGetValue(node.Input[0], out var gathers))
                byTable[node.Input[0]] = gathers = [];
            gathers.Add(node);
        }
        return byTable.Select(p =>
        {
            var t = graph.GetInitializer(p.Key)!;
            return new TokenEmbedding(p.Key, (int)t.Shape[0], (int)t.Shape[1], t.DataType, p.Value);
        }).ToList();
    }

    /// <summary>
    /// The linears <paramref name="selection"/> leaves to the head pass (<see cref="KeepReason.LmHeadOwnBits"/>), main
    /// graph only, with their weight chains and the embedding each is tied to, if any.
    /// </summary>
    public static IReadOnlyList<LmHead> Heads(Graph graph, LinearSelection selection, IReadOnlyList<TokenEmbedding> embeddings)
    {
        var heads = new List<LmHead>();
        foreach (var candidate in LinearAnalysis.ClassifyGraph(graph, null, selection).Where(c => c.Reason == KeepReason.LmHeadOwnBits))
        {
            if (WeightChain.Resolve(graph, candidate.Node.Input[1]).Chain is not { } chain)
                continue;
            string? tied = embeddings.FirstOrDefault(e => e.Table == chain.Root && IsTransposeOfRoot(candidate.Node, chain))?.Table;
            heads.Add(new LmHead(candidate, chain, tied));
        }
        return heads;
    }

    // MatMul(x, Transpose(E)) or Gemm(x, E, transB = 1): the head computes x · Eᵀ with E's rows as its output columns.
    private static bool IsTransposeOfRoot(NodeProto node, WeightChain chain)
    {
        if (node.IsOnnx("Gemm"))
            return chain.IsDirect && node.GetInt("transB", 0) != 0;
        return chain.Steps.Count == 1 && chain.Steps[0].IsOnnx("Transpose")
            && (chain.Steps[0].GetInts("perm") is null || chain.Steps[0].GetInts("perm") is [1, 0]);
    }

    /// <summary>Every token embedding, float or GatherBlockQuantized (whose codes may come through a Reshape of a tied head's B).</summary>
    public static IReadOnlyList<EmbeddingSummary> Summaries(Graph graph)
    {
        var result = Embeddings(graph).Select(e => new EmbeddingSummary(e.Gathers[0].Name, e.Table, e.Rows, e.Width, "Gather " + ElementType.Name(e.Type),
            null, null, graph.GetInitializer(e.Table)!.ByteLength)).ToList();
        var tokenInputs = graph.Inputs.Where(i => SequenceLimits.IsTokenInput(i.Name)).Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        // A table read through exact steps on another constant (a head's weight tied as Gather(Transpose(W))): shown, not quantized.
        foreach (var node in graph.Nodes.Where(n => n.IsOnnx("Gather") && n.Input.Count == 2 && n.GetInt("axis", 0) == 0 && graph.GetInitializer(n.Input[0]) is null))
        {
            if (!tokenInputs.Contains(graph.StripCasts(node.Input[1])) || WeightChain.Resolve(graph, node.Input[0]).Chain is not { IsDirect: false, Shape.Count: 2 } chain
                || graph.GetConstant(chain.Root) is not { } root)
                continue;
            result.Add(new EmbeddingSummary(node.Name, $"{chain.Description}({chain.Root})", (int)chain.Shape[0], (int)chain.Shape[1],
                $"Gather {ElementType.Name(chain.DataType)}, tied through {chain.Description}", null, null, root.ByteLength));
        }
        foreach (var node in graph.Nodes.Where(n => n.IsMicrosoft("GatherBlockQuantized") && n.Input.Count >= 3))
        {
            if (!tokenInputs.Contains(graph.StripCasts(node.Input[1])))
                continue;
            string codes = graph.ProducerIs(node.Input[0], "Reshape") is { } reshape ? reshape.Input[0] : node.Input[0];
            if (graph.GetInitializer(codes) is not { } data || graph.GetInitializer(node.Input[2]) is not { Shape.Count: 2 } scales)
                continue;
            int bits = (int)node.GetInt("bits", 4);
            long bytes = data.ByteLength + scales.ByteLength + (node.InputAt(3) is { Length: > 0 } zp ? graph.GetInitializer(zp)?.ByteLength ?? 0 : 0);
            result.Add(new EmbeddingSummary(node.Name, codes, (int)scales.Shape[0], (int)(data.ElementCount / scales.Shape[0] * 8 / bits),
                $"GatherBlockQuantized {bits}-bit", bits, (int)node.GetInt("block_size", 128), bytes));
        }
        return result;
    }

    private static bool IsFloatTable(Tensor? t) =>
        t is { Shape.Count: 2 } && t.Shape[0] > 0 && t.Shape[1] > 0
        && t.DataType is TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Float16;
}
