using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.IR;

namespace OnnxQuant.Smoothing;

/// <summary>
/// A chain of nodes from a linear's output to an activation along which activation channel p is source column
/// <see cref="Map"/>[p] times factors that do not depend on the source: reshapes, transposes, casts, attention's
/// <c>probs · V</c>, an elementwise Mul by another branch (SwiGLU's <c>SiLU(gate) * up</c>), and a grouped-query
/// attention's KV repeat (Unsqueeze, then Expand, Tile or a Concat of copies, then Reshape), which makes several
/// activation channels read one source column. Dividing those source columns by s divides the activation's channels
/// by s, so channels that share a column must share s (<see cref="ChannelTies"/>). Every value on the chain is read by
/// the next node only.
/// </summary>
internal sealed record ChannelPath(LinearNode Source, IReadOnlyList<NodeProto> Nodes, int[] Map)
{
    private const int MaxLength = 24;

    /// <summary>"direct", "attention (probs·V)" or "gated (x·up)", for tables.</summary>
    public string Pattern =>
        Nodes.Count == 0 ? "direct"
        : Nodes.Any(IsAttentionNode) ? "attention"
        : Nodes.Any(n => n.IsOnnx("Mul")) ? "gated Mul"
        : "reshape";

    private static bool IsAttentionNode(NodeProto n) =>
        n.IsOnnx("MatMul") || n.IsMicrosoft("GroupQueryAttention") || n.IsMicrosoft("MultiHeadAttention");

    /// <summary>The path from a linear of <paramref name="linears"/> to <paramref name="activation"/> with <paramref name="channels"/> channels, or null.</summary>
    public static ChannelPath? Trace(Graph graph, string activation, int channels, IReadOnlyList<LinearNode> linears)
    {
        var byOutput = new Dictionary<string, LinearNode>(StringComparer.Ordinal);
        foreach (var l in linears)
            byOutput.TryAdd(l.Output, l);
        var nodes = new List<NodeProto>();
        return FindBackwards(graph, activation, channels, byOutput, nodes, 0, new ShapeHints(graph, linears));
    }

    /// <summary>Re-checks a traced path against the graph as it is now.</summary>
    public bool StillHolds(Graph graph) =>
        LinearNode.TryCreate(graph, Source.Node) is { } source
        && Verify(graph, source, Nodes, Map.Length, new ShapeHints(graph, LinearNode.FindAll(graph))) is { } map && map.SequenceEqual(Map);

    private static ChannelPath? FindBackwards(Graph graph, string value, int channels, Dictionary<string, LinearNode> byOutput,
        List<NodeProto> nodes, int depth, ShapeHints hints)
    {
        // A KV repeat gives the activation a whole multiple of the source's columns.
        if (byOutput.TryGetValue(value, out var source) && channels % source.N == 0)
        {
            var chain = Enumerable.Reverse(nodes).ToList();
            return chain.Count > 0 && Verify(graph, source, chain, channels, hints) is { } map ? new ChannelPath(source, chain, map) : null;
        }
        if (depth >= MaxLength || graph.Producer(value) is not { } node)
            return null;
        foreach (var input in PathInputs(graph, node))
        {
            nodes.Add(node);
            var found = FindBackwards(graph, input, channels, byOutput, nodes, depth + 1, hints);
            nodes.RemoveAt(nodes.Count - 1);
            if (found is not null)
                return found;
        }
        return null;
    }

    // The inputs through which a channel-preserving path may pass this node.
    private static IEnumerable<string> PathInputs(Graph graph, NodeProto node)
    {
        if (node.IsOnnx("Cast") || node.IsOnnx("Identity") || node.IsOnnx("Reshape") || node.IsOnnx("Transpose")
            || node.IsOnnx("Unsqueeze") || node.IsOnnx("Expand") || node.IsOnnx("Tile") || IsRepeatConcat(node))
            return [node.Input[0]];
        if (node.IsOnnx("MatMul") && node.Input.Count == 2 && graph.GetConstant(node.Input[1]) is null)
            return [node.Input[1]];
        if (node.IsOnnx("Mul") && node.Input.Count == 2)
            return [node.Input[0], node.Input[1]];
        if ((node.IsMicrosoft("GroupQueryAttention") || node.IsMicrosoft("MultiHeadAttention")) && node.InputAt(2) is { } v)
            return [v];
        return [];
    }

    /// <summary>Follows the chain forwards, checking every step; returns the channel map or null.</summary>
    private static int[]? Verify(Graph graph, LinearNode source, IReadOnlyList<NodeProto> chain, int channels, ShapeHints hints)
    {
        string value = source.Output;
        var layout = ChannelLayout.LinearOutput(source.N);
        foreach (var node in chain)
        {
            if (!OnlyReadBy(graph, value, node))
                return null;
            layout = Step(graph, node, value, layout, source.Output, hints);
            if (layout is null)
                return null;
            value = node.Output[0];
        }
        // Every source column must reach the activation, or its 1/s would have no channel to come from.
        return layout.IsSingleTrailingAxis && layout.Channels == channels && layout.Order.Distinct().Count() == source.N ? layout.Order : null;
    }

    // Concat(x, x, ..., x): exporters' repeat_kv by torch.cat of copies.
    private static bool IsRepeatConcat(NodeProto node) =>
        node.IsOnnx("Concat") && node.Input.Count >= 2 && node.Input.All(i => i == node.Input[0]);

    // The value feeds this node alone (besides Shape readers), once, and is no graph output: scaling it changes nothing else.
    private static bool OnlyReadBy(Graph graph, string value, NodeProto node)
    {
        var readers = graph.Consumers(value).Where(r => !ActivationReaders.ReadsShapeOnly(r)).ToList();
        return !graph.IsGraphOutput(value) && readers.Count == 1 && ReferenceEquals(readers[0], node)
            && (node.Input.Count(i => i == value) == 1 || IsRepeatConcat(node));
    }

    private static ChannelLayout? Step(Graph graph, NodeProto node, string value, ChannelLayout layout, string sourceOutput, ShapeHints hints)
    {
        if (node.IsOnnx("Identity"))
            return layout;
        if (node.IsOnnx("Cast"))
            return ElementType.IsFloat((Onnx.TensorProto.Types.DataType)node.GetInt("to", 0)) ? layout : null;
        if (node.IsOnnx("Reshape"))
            return node.Input[0] == value && ReshapeTarget(graph, node, hints) is { } shape ? layout.Reshape(shape) ?? layout.ReshapeAcrossTokens(shape) : null;
        if (node.IsOnnx("Transpose"))
            return layout.Transpose(node.GetInts("perm"));
        if (node.IsOnnx("Unsqueeze"))
            return UnsqueezeAxes(graph, node) is { } axes ? layout.Unsqueeze(axes) : null;
        if (node.IsOnnx("Expand"))
            return node.Input[0] == value && ShapeEntries(graph, node.Input[1], hints) is { } target ? layout.Expand(target) : null;
        if (node.IsOnnx("Tile"))
            return node.Input[0] == value && ShapeEntries(graph, node.Input[1], hints) is { } repeats ? layout.Tile(repeats) : null;
        if (IsRepeatConcat(node) && layout.RankKnown)
        {
            long axis = node.GetInt("axis", 0);
            var repeats = layout.Axes.Select(_ => (long?)1).ToArray();
            if (axis < -repeats.Length || axis >= repeats.Length)
                return null;
            repeats[axis < 0 ? axis + repeats.Length : axis] = node.Input.Count;
            return layout.Tile(repeats);
        }
        if (node.IsOnnx("MatMul"))
            return node.Input[1] == value && !DependsOn(graph, node.Input[0], sourceOutput) ? layout.AsMatMulRightOperand() : null;
        if (node.IsOnnx("Mul"))
        {
            string other = node.Input[0] == value ? node.Input[1] : node.Input[0];
            // A factor from another branch scales each element; broadcasting may add leading axes, so the rank becomes unknown.
            return !DependsOn(graph, other, sourceOutput) ? layout.WithUnknownRank() : null;
        }
        if (node.IsMicrosoft("GroupQueryAttention") || node.IsMicrosoft("MultiHeadAttention"))
            return AttentionOpKeepsChannels(graph, node, value, sourceOutput) && layout.IsSingleTrailingAxis ? layout.WithUnknownRank() : null;
        return null;
    }

    // Fused attention is linear in V per channel when every query head reads its own V head (no GQA sharing), V has no
    // bias inside the op, and no cached V from earlier steps (unscaled) is mixed in or exposed.
    private static bool AttentionOpKeepsChannels(Graph graph, NodeProto node, string value, string sourceOutput)
    {
        if (node.InputAt(2) != value || node.InputAt(0) is not { } query || DependsOn(graph, query, sourceOutput)
            || node.InputAt(1) is not { } key || DependsOn(graph, key, sourceOutput))
            return false;
        bool gqa = node.IsMicrosoft("GroupQueryAttention");
        long heads = node.GetInt("num_heads", 0);
        if (gqa && node.GetInt("kv_num_heads", 0) != heads)
            return false;
        if (!gqa && node.InputAt(3) is not null) // MultiHeadAttention's bias would be added to V unscaled
            return false;
        int pastValue = gqa ? 4 : 7;
        if (node.InputAt(pastValue) is not null)
            return false;
        for (int o = 1; o < node.Output.Count; o++)
            if (node.Output[o].Length > 0 && (graph.IsGraphOutput(node.Output[o]) || graph.Consumers(node.Output[o]).Count > 0))
                return false;
        return true;
    }

    /// <summary>The Reshape's target entries: constants where known, null where computed at run time. Null when the rank is unknown.</summary>
    private static IReadOnlyList<long?>? ReshapeTarget(Graph graph, NodeProto reshape, ShapeHints hints)
    {
        if (reshape.GetInt("allowzero", 0) != 0 || reshape.InputAt(1) is not { } shape)
            return null;
        return ShapeEntries(graph, shape, hints);
    }

    // Unsqueeze's axes: input 1 from opset 13, the attribute before.
    private static IReadOnlyList<long>? UnsqueezeAxes(Graph graph, NodeProto node) =>
        node.InputAt(1) is { } axes ? graph.GetConstant(axes)?.ToInt64s() : node.GetInts("axes");

    /// <summary>A shape-like int64 vector's entries: constants where known, null where computed at run time.</summary>
    private static IReadOnlyList<long?>? ShapeEntries(Graph graph, string shape, ShapeHints hints)
    {
        if (graph.GetConstant(shape) is { } constant)
            return constant.ToInt64s().Select(v => (long?)v).ToList();
        if (graph.ProducerIs(shape, "Concat") is not { } concat)
            return null;
        var entries = new List<long?>();
        foreach (var part in concat.Input)
        {
            if (graph.GetConstant(part) is { } c)
                entries.AddRange(c.ToInt64s().Select(v => (long?)v));
            else if (hints.ShapeEntry(part) is { } known)
                entries.Add(known);
            else if (IsSingleElement(graph, part))
                entries.Add(null);
            else
                return null;
        }
        return entries;
    }

    // A run-time value known to hold one element: Unsqueeze of a scalar (what exporters build shapes from).
    private static bool IsSingleElement(Graph graph, string value) =>
        graph.ProducerIs(value, "Unsqueeze") is { } u && graph.Producer(u.Input[0]) is { } p
        && (p.IsOnnx("Gather") && graph.GetConstant(p.Input[1]) is { Shape.Count: 0 } || p.IsOnnx("Div") || p.IsOnnx("Mul") || p.IsOnnx("Cast"));

    /// <summary>True when <paramref name="value"/> is computed from <paramref name="ancestor"/>.</summary>
    internal static bool DependsOn(Graph graph, string value, string ancestor)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<string>();
        stack.Push(value);
        while (stack.Count > 0)
        {
            var v = stack.Pop();
            if (v == ancestor)
                return true;
            if (!seen.Add(v) || graph.Producer(v) is not { } p)
                continue;
            foreach (var i in Graph.NodeInputs(p))
                stack.Push(i);
        }
        return false;
    }
}
