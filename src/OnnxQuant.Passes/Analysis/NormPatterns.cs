using Onnx;
using OnnxQuant.IR;

namespace OnnxQuant.Analysis;

/// <summary>
/// A normalization whose output channels can take a folded per-channel scale: where its gamma (and beta) live, which
/// nodes apply them, and what it normalizes.
/// </summary>
/// <param name="Input">The value the norm normalizes (before any Cast the pattern starts with).</param>
/// <param name="Skip">For Skip* ops, the skip input added to <paramref name="Input"/> first.</param>
/// <param name="Gamma">The constant per-channel scale.</param>
/// <param name="Beta">The constant per-channel shift, when the norm has one (LayerNorm kinds only).</param>
/// <param name="GammaNode">The node that applies gamma: the fused op itself, or the final Mul of a decomposed pattern.</param>
/// <param name="BetaNode">The node that adds beta: the fused op, the final Add of a decomposed LayerNorm, or null.</param>
/// <param name="Nodes">Every node of the pattern (a fused op is one node).</param>
public sealed record NormMatch(string Input, string? Skip, string Gamma, string? Beta, NodeProto GammaNode, NodeProto? BetaNode,
    IReadOnlyList<NodeProto> Nodes)
{
    /// <summary>A Cast between float types after gamma (an fp32 norm in an fp16 model), which the pattern ends with; null when none.</summary>
    public NodeProto? OutputCast { get; init; }

    /// <summary>The output that carries the normalized value (output 0 of fused ops, the last node's output otherwise).</summary>
    public string Output => OutputCast?.Output[0] ?? (BetaNode ?? GammaNode).Output[0];
}

/// <summary>Recognizes fused norm ops and the decomposed LayerNorm / RMSNorm patterns of exported models (docs/architecture.md, "Exported graph patterns").</summary>
public static class NormPatterns
{
    /// <summary>
    /// The fused norm op that produces <paramref name="value"/> as its output 0, with constant gamma (and beta), or null.
    /// Output indexes other than 0 (LayerNormalization's mean, Skip*'s residual sum) are not normalized values.
    /// </summary>
    public static (ProducerKind Kind, NormMatch Match)? MatchFused(Graph graph, NodeProto node, string value)
    {
        if (GraphPatterns.OutputIndex(node, value) != 0)
            return null;
        (ProducerKind kind, int gamma, int beta, int skip)? layout =
            node.IsOnnx("LayerNormalization") ? (ProducerKind.LayerNorm, 1, 2, -1)
            : node.IsOnnx("SimplifiedLayerNormalization") || node.IsMicrosoft("SimplifiedLayerNormalization") ? (ProducerKind.RMSNorm, 1, -1, -1)
            : node.IsMicrosoft("SkipLayerNormalization") ? (ProducerKind.SkipLayerNorm, 2, 3, 1)
            : node.IsMicrosoft("SkipSimplifiedLayerNormalization") ? (ProducerKind.SkipRMSNorm, 2, -1, 1)
            : null;
        if (layout is not { } l || node.InputAt(0) is not { } input)
            return null;
        if (node.InputAt(l.gamma) is not { } gamma || !graph.IsConstantChannelVector(gamma))
            return null;
        string? beta = l.beta >= 0 ? node.InputAt(l.beta) : null;
        if (beta is not null && !graph.IsConstantChannelVector(beta))
            return null;
        string? skip = l.skip >= 0 ? node.InputAt(l.skip) : null;
        return (l.kind, new NormMatch(input, skip, gamma, beta, node, beta is null ? null : node, [node]));
    }

    /// <summary>
    /// Matches, backwards from <paramref name="value"/>, a decomposed norm ending in <c>Mul(gamma)</c> [<c>-> Add(beta)</c>]:
    /// LayerNorm when the normalized value is centred (<c>Sub(x, ReduceMean(x))</c>), RMSNorm otherwise.
    /// Returns null for anything else, including an RMS pattern followed by an Add (not a norm's beta) and a gamma
    /// Mul whose output is read by more than the beta Add (scaling gamma would change that reader too).
    /// </summary>
    public static (ProducerKind Kind, NormMatch Match)? MatchDecomposed(Graph graph, string value)
    {
        var nodes = new List<NodeProto>();
        string? beta = null;
        NodeProto? betaNode = null;
        // An fp32 island: the norm runs in fp32 and its output is cast to the model's type; scaling gamma before the
        // Cast scales its output the same, as long as nothing else reads the fp32 value.
        var outputCast = graph.ProducerIs(value, "Cast") is { } cast && ElementType.IsFloat((TensorProto.Types.DataType)cast.GetInt("to", 0))
            && graph.Consumers(cast.Input[0]).Count == 1 && !graph.IsGraphOutput(cast.Input[0]) ? cast : null;
        if (outputCast is not null)
            value = outputCast.Input[0];
        string scaled = value;
        if (graph.ProducerWithConstant(value, "Add", out var betaName, out var addInput) is { } add && graph.IsConstantChannelVector(betaName))
        {
            beta = betaName;
            betaNode = add;
            scaled = addInput;
        }
        if (graph.ProducerWithConstant(scaled, "Mul", out var gamma, out var normalized) is not { } gammaMul || !graph.IsConstantChannelVector(gamma))
            return null;
        if (betaNode is not null && (graph.Consumers(scaled).Count != 1 || graph.IsGraphOutput(scaled)))
            return null;

        var core = MatchNormalizedCore(graph, graph.StripCasts(normalized), nodes);
        if (core is null)
            return null;
        string centred = core;
        ProducerKind kind;
        string input;
        if (MatchCentring(graph, centred, nodes) is { } lnInput)
        {
            kind = ProducerKind.DecomposedLayerNorm;
            input = lnInput;
        }
        else
        {
            if (betaNode is not null)
                return null;
            kind = ProducerKind.DecomposedRMSNorm;
            input = graph.StripCasts(centred);
        }
        nodes.Reverse();
        AddCastsBetween(graph, normalized, nodes);
        nodes.Add(gammaMul);
        if (betaNode is not null)
            nodes.Add(betaNode);
        if (outputCast is not null)
            nodes.Add(outputCast);
        return (kind, new NormMatch(input, null, gamma, beta, gammaMul, betaNode, nodes) { OutputCast = outputCast });
    }

    // n = D / S, or D * R with R = Reciprocal(S) or 1 / S; S = Sqrt(mean(D²) + eps). Returns D.
    private static string? MatchNormalizedCore(Graph graph, string n, List<NodeProto> nodes)
    {
        if (graph.ProducerIs(n, "Div") is { } div && div.Input.Count == 2)
        {
            if (MatchRootMeanSquare(graph, div.Input[1], div.Input[0], nodes))
            {
                nodes.Insert(0, div);
                return div.Input[0];
            }
            return null;
        }
        if (graph.ProducerIs(n, "Mul") is not { } mul || mul.Input.Count != 2)
            return null;
        for (int side = 0; side < 2; side++)
        {
            string d = mul.Input[side], r = mul.Input[1 - side];
            var inverse = graph.ProducerIs(r, "Reciprocal");
            string? s = inverse?.Input[0];
            if (inverse is null && graph.ProducerIs(r, "Div") is { } oneOver && graph.IsScalarConstant(oneOver.Input[0], 1f))
            {
                inverse = oneOver;
                s = oneOver.Input[1];
            }
            var found = new List<NodeProto>();
            if (inverse is not null && s is not null && MatchRootMeanSquare(graph, s, d, found))
            {
                nodes.Add(mul);
                nodes.Add(inverse);
                nodes.AddRange(found);
                return d;
            }
        }
        return null;
    }

    // s = Sqrt(Add(ReduceMean(Pow(d, 2)), eps)), with d the same value as `of` up to Casts.
    private static bool MatchRootMeanSquare(Graph graph, string s, string of, List<NodeProto> nodes)
    {
        var sqrt = graph.ProducerIs(graph.StripCasts(s), "Sqrt");
        if (sqrt is null)
            return false;
        var addEps = graph.ProducerWithConstant(sqrt.Input[0], "Add", out var eps, out var mean);
        if (addEps is null || !graph.IsScalarConstant(eps))
            return false;
        var reduce = graph.ProducerIs(mean, "ReduceMean");
        if (reduce is null || !ReducesOneAxisKeepingDims(graph, reduce))
            return false;
        string? squared = SquareOf(graph, reduce.Input[0], out var square);
        if (squared is null || !graph.SameUpToCasts(squared, of))
            return false;
        nodes.AddRange([sqrt, addEps, reduce, square!]);
        return true;
    }

    // Pow(x, 2) or Mul(x, x): returns x.
    private static string? SquareOf(Graph graph, string value, out NodeProto? node)
    {
        node = graph.Producer(value);
        if (node is null || node.Input.Count != 2)
            return null;
        if (node.IsOnnx("Pow") && graph.IsScalarConstant(node.Input[1], 2f))
            return node.Input[0];
        if (node.IsOnnx("Mul") && node.Input[0] == node.Input[1])
            return node.Input[0];
        return null;
    }

    // d = Sub(x, ReduceMean(x)): returns x (before Casts).
    private static string? MatchCentring(Graph graph, string d, List<NodeProto> nodes)
    {
        var sub = graph.ProducerIs(graph.StripCasts(d), "Sub");
        if (sub is null || sub.Input.Count != 2)
            return null;
        var mean = graph.ProducerIs(sub.Input[1], "ReduceMean");
        if (mean is null || !ReducesOneAxisKeepingDims(graph, mean) || !graph.SameUpToCasts(mean.Input[0], sub.Input[0]))
            return null;
        nodes.AddRange([sub, mean]);
        return graph.StripCasts(sub.Input[0]);
    }

    // A norm reduces the channel axis only: one axis (attribute before opset 18, input after), keepdims on.
    private static bool ReducesOneAxisKeepingDims(Graph graph, NodeProto reduce)
    {
        if (reduce.GetInt("keepdims", 1) != 1)
            return false;
        if (reduce.GetInts("axes") is { } axes)
            return axes.Count == 1;
        if (reduce.InputAt(1) is { } axesInput)
            return graph.GetConstant(axesInput) is { ElementCount: 1 };
        return false;
    }

    private static void AddCastsBetween(Graph graph, string value, List<NodeProto> nodes)
    {
        var casts = new List<NodeProto>();
        while (graph.ProducerIs(value, "Cast") is { } cast && casts.Count < 16)
        {
            casts.Insert(0, cast);
            value = cast.Input[0];
        }
        nodes.AddRange(casts);
    }
}
