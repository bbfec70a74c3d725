using Onnx;
using OnnxQuant.IR;

namespace OnnxQuant.Analysis;

/// <summary>What computes a linear's activation, as far as folding a per-channel scale into it is concerned.</summary>
public enum ProducerKind
{
    /// <summary>Default-domain LayerNormalization.</summary>
    LayerNorm,
    /// <summary>SimplifiedLayerNormalization (default domain or com.microsoft).</summary>
    RMSNorm,
    /// <summary>com.microsoft SkipLayerNormalization, output 0.</summary>
    SkipLayerNorm,
    /// <summary>com.microsoft SkipSimplifiedLayerNormalization, output 0.</summary>
    SkipRMSNorm,
    /// <summary>ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul(gamma) [, Add(beta)].</summary>
    DecomposedLayerNorm,
    /// <summary>[Cast] Pow, ReduceMean, Add, Sqrt, Div or Reciprocal+Mul, [Cast], Mul(gamma).</summary>
    DecomposedRMSNorm,
    /// <summary>Another linear (MatMul or Gemm with a constant weight), possibly through its bias Add.</summary>
    MatMul,
    /// <summary>Anything else: a graph input, an activation function, a norm output other than the normalized value...</summary>
    Other,
}

/// <summary>
/// The producer of an activation: its kind, the node and output index that compute it, and for norms the
/// <see cref="NormMatch"/> naming gamma/beta, for linears the producing <see cref="LinearNode"/>.
/// </summary>
/// <param name="Node">The node whose output is the activation (a decomposed norm's last node; a linear's bias Add); null for graph inputs and initializers.</param>
/// <param name="OutputIndex">Which output of <paramref name="Node"/> the activation is (Skip* ops: 0 normalized, 3 the residual sum); -1 without a node.</param>
public sealed record ActivationProducer(string Activation, ProducerKind Kind, NodeProto? Node, int OutputIndex, NormMatch? Norm, LinearNode? Linear)
{
    public bool IsNorm => Norm is not null;

    /// <summary>Classifies the producer of the activation of <paramref name="linear"/>; a norm whose gamma is not K long counts as Other.</summary>
    public static ActivationProducer Of(Graph graph, LinearNode linear, IReadOnlyList<LinearNode>? linears = null)
    {
        var producer = Classify(graph, linear.Activation, linears);
        if (producer.Norm is { } norm && graph.GetConstant(norm.Gamma)?.ElementCount != linear.K)
            return producer with { Kind = ProducerKind.Other, Norm = null };
        return producer;
    }

    /// <summary>Classifies the producer of <paramref name="activation"/>. Pass the graph's linears when classifying many values.</summary>
    public static ActivationProducer Classify(Graph graph, string activation, IReadOnlyList<LinearNode>? linears = null)
    {
        var node = graph.Producer(activation);
        if (node is null)
            return new ActivationProducer(activation, ProducerKind.Other, null, -1, null, null);
        int index = GraphPatterns.OutputIndex(node, activation);

        if (NormPatterns.MatchFused(graph, node, activation) is { } fused)
            return new ActivationProducer(activation, fused.Kind, node, index, fused.Match, null);
        if (IsFusedNormOp(node))
            return new ActivationProducer(activation, ProducerKind.Other, node, index, null, null);
        if (NormPatterns.MatchDecomposed(graph, activation) is { } decomposed)
            return new ActivationProducer(activation, decomposed.Kind, node, index, decomposed.Match, null);
        if (LinearProducing(graph, activation, linears) is { } linear)
            return new ActivationProducer(activation, ProducerKind.MatMul, node, index, null, linear);
        return new ActivationProducer(activation, ProducerKind.Other, node, index, null, null);
    }

    private static bool IsFusedNormOp(NodeProto node) =>
        node.IsOnnx("LayerNormalization") || node.IsOnnx("SimplifiedLayerNormalization")
        || node.IsMicrosoft("SimplifiedLayerNormalization") || node.IsMicrosoft("SkipLayerNormalization")
        || node.IsMicrosoft("SkipSimplifiedLayerNormalization");

    // The linear whose output (after its bias, if any) is the value; a MatMul's raw output counts only without a bias.
    private static LinearNode? LinearProducing(Graph graph, string value, IReadOnlyList<LinearNode>? linears)
    {
        if (linears is not null)
            return linears.FirstOrDefault(l => l.Output == value);
        var node = graph.Producer(value);
        if (node is null)
            return null;
        if (LinearNode.TryCreate(graph, node) is { } direct && direct.Output == value)
            return direct;
        if (node.IsOnnx("Add"))
            foreach (var input in node.Input)
                if (graph.Producer(input) is { } before && LinearNode.TryCreate(graph, before) is { } viaBias && viaBias.Output == value)
                    return viaBias;
        return null;
    }

    /// <summary>A short description for tables: the kind and the node, and gamma for norms.</summary>
    public string Describe()
    {
        if (Node is null)
            return Kind == ProducerKind.Other ? $"input '{Activation}'" : Kind.ToString();
        string where = OutputIndex > 0 ? $"{Node.Name}:{OutputIndex}" : Node.Name;
        return Norm is not null ? $"{where} (gamma {Norm.Gamma})" : where;
    }
}
