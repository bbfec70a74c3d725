using Onnx;
using OnnxQuant.IO;
using OnnxQuant.IR;

namespace OnnxQuant.Analysis;

/// <summary>
/// The one linear analysis: every MatMul and Gemm of the model, subgraph bodies included, with a typed verdict —
/// quantizable, or kept with a <see cref="KeepReason"/>. `inspect`, the passes and the command summaries all read it,
/// so their counts always add up to the number of MatMul/Gemm nodes.
/// </summary>
public static class LinearAnalysis
{
    public static LinearTable Analyze(Graph graph, LinearSelection selection)
    {
        var rows = new List<LinearCandidate>();
        Visit(graph, null, selection, rows);
        return new LinearTable(rows);
    }

    private static void Visit(Graph graph, string? scope, LinearSelection selection, List<LinearCandidate> rows)
    {
        rows.AddRange(ClassifyGraph(graph, scope, selection));
        foreach (var node in graph.Nodes)
            foreach (var attribute in SubgraphBodies.Attributes(node))
            {
                var body = SubgraphBodies.Open(graph, node, attribute);
                Visit(body, SubgraphBodies.Scope(scope, node, attribute), selection, rows);
            }
    }

    /// <summary>The verdicts on the MatMul/Gemm nodes of <paramref name="graph"/> itself (not its bodies), in node order.</summary>
    public static List<LinearCandidate> ClassifyGraph(Graph graph, string? scope, LinearSelection selection) =>
        graph.Nodes.Where(IsLinearOp).Select(n => Classify(graph, n, scope, selection)).ToList();

    public static bool IsLinearOp(NodeProto node) => node.IsOnnx("MatMul") || node.IsOnnx("Gemm");

    /// <summary>A linear some tool already quantized: MatMulNBits, MatMulInteger, QLinearMatMul and their fused forms.</summary>
    public static bool IsQuantizedLinearOp(NodeProto node) =>
        node.IsOnnx("MatMulInteger") || node.IsOnnx("QLinearMatMul")
        || node.IsMicrosoft("MatMulNBits") || node.IsMicrosoft("MatMulIntegerToFloat") || node.IsMicrosoft("DynamicQuantizeMatMul") || node.IsMicrosoft("MatMulBnb4");

    /// <summary>The verdict on one MatMul/Gemm of <paramref name="graph"/> (a body graph for subgraph nodes).</summary>
    public static LinearCandidate Classify(Graph graph, NodeProto node, string? scope, LinearSelection selection)
    {
        var facts = Inspect(graph, node);
        var reason = facts.Reason;
        string? detail = facts.Detail;
        if (reason == KeepReason.None && selection.Exclusion(graph, node.Name, facts.Chain!.Root, facts.Output, scope) is { } excluded)
            (reason, detail) = excluded;
        bool visible = scope is null || (node.InputAt(0) is { } a && IsOuterValue(graph, a));
        return new LinearCandidate(node.Name, node.OpType, scope, node.InputAt(0) ?? "", facts.K, facts.N,
            facts.Chain?.DataType ?? TensorProto.Types.DataType.Undefined, facts.Chain is { IsDirect: false } chain ? chain.Description : null,
            reason, detail, visible) { Node = node };
    }

    // A body's value that the main graph defines (so calibration, which records main-graph values, sees it).
    private static bool IsOuterValue(Graph body, string value)
    {
        var graph = body;
        while (graph.Outer is { } outer)
        {
            if (graph.Producer(value) is not null || graph.IsGraphInput(value) || graph.GetInitializer(value) is not null)
                return false;
            graph = outer;
        }
        return graph.Producer(value) is not null || graph.IsGraphInput(value);
    }

    /// <summary>What the graph's structure says of a MatMul/Gemm, before any option: the reason it cannot be quantized, or its shape and weight.</summary>
    internal static LinearFacts Inspect(Graph graph, NodeProto node)
    {
        if (node.InputAt(0) is not { } activation || node.InputAt(1) is not { } weightName || node.Output.Count == 0)
            return LinearFacts.Kept(KeepReason.ComputedWeight, "an input is missing");
        if (graph.GetConstant(activation) is not null)
            return LinearFacts.Kept(KeepReason.ConstantActivation);
        var source = WeightChain.Resolve(graph, weightName);
        if (source.Kind == WeightSourceKind.Dequantized)
            return LinearFacts.Kept(KeepReason.AlreadyQuantized, "weight is DequantizeLinear of an integer constant");
        if (source.Chain is not { } chain)
            return LinearFacts.Kept(KeepReason.ComputedWeight);
        if (chain.Shape.Count != 2)
            return LinearFacts.Kept(KeepReason.WeightNotMatrix, $"weight shape [{string.Join(", ", chain.Shape)}]") with { Chain = chain };
        if (chain.DataType is not (TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Float16 or TensorProto.Types.DataType.Bfloat16))
            return LinearFacts.Kept(KeepReason.UnsupportedDtype, $"{ElementType.Name(chain.DataType)} weight") with { Chain = chain };

        if (node.IsOnnx("MatMul"))
        {
            int k = (int)chain.Shape[0], n = (int)chain.Shape[1];
            var bias = LinearNode.FindMatMulBias(graph, node, n);
            return new LinearFacts(KeepReason.None, null, chain, k, n, bias, false, 1f, bias?.AddNode?.Output[0] ?? node.Output[0]);
        }
        if (node.GetInt("transA", 0) != 0)
            return LinearFacts.Kept(KeepReason.TransposedActivation) with { Chain = chain };
        float alpha = node.GetFloat("alpha", 1f);
        if (alpha == 0f || !float.IsFinite(alpha))
            return LinearFacts.Kept(KeepReason.InvalidAlpha) with { Chain = chain };
        bool transB = node.GetInt("transB", 0) != 0;
        int gk = (int)chain.Shape[transB ? 1 : 0], gn = (int)chain.Shape[transB ? 0 : 1];
        LinearBias? gemmBias = null;
        if (node.InputAt(2) is { } c)
        {
            gemmBias = LinearNode.ConstantVectorBias(graph, c, gn, null, node.GetFloat("beta", 1f));
            if (gemmBias is null)
                return LinearFacts.Kept(KeepReason.NonVectorBias) with { Chain = chain, K = gk, N = gn };
        }
        return new LinearFacts(KeepReason.None, null, chain, gk, gn, gemmBias, transB, alpha, node.Output[0]);
    }
}

/// <summary>The structure of one MatMul/Gemm (<see cref="LinearAnalysis.Inspect"/>).</summary>
internal sealed record LinearFacts(KeepReason Reason, string? Detail, WeightChain? Chain, int K, int N, LinearBias? Bias,
    bool Transposed, float Alpha, string Output)
{
    public static LinearFacts Kept(KeepReason reason, string? detail = null) => new(reason, detail, null, 0, 0, null, false, 1f, "");
}

/// <summary>One MatMul/Gemm and the analysis' verdict on it.</summary>
/// <param name="Scope">Null in the main graph; "If_3/then_branch" (nested with '/') inside a subgraph body.</param>
/// <param name="K">Input channels of the logical weight (0 when it has none).</param>
/// <param name="WeightVia">The constant steps between the stored weight and the node ("Cast", "Transpose"), folded before quantization; null when direct.</param>
/// <param name="ActivationCalibrated">True when calibration records the activation (main-graph values, also those a body reads from outside).</param>
public sealed record LinearCandidate(string Name, string Op, string? Scope, string Activation, int K, int N,
    [property: System.Text.Json.Serialization.JsonIgnore] TensorProto.Types.DataType WeightType,
    string? WeightVia, KeepReason Reason, string? Detail, bool ActivationCalibrated)
{
    /// <summary>"float16", or "-" when the weight is not a constant.</summary>
    public string WeightDtype => WeightType == TensorProto.Types.DataType.Undefined ? "-" : ElementType.Name(WeightType);

    [System.Text.Json.Serialization.JsonIgnore]
    public NodeProto Node { get; init; } = null!;

    public bool Quantizable => Reason == KeepReason.None;

    /// <summary>"LM head (--include-lm-head to quantize it)", "excluded: --exclude 'fc*'".</summary>
    public string ReasonText => Detail is null ? KeepReasons.Describe(Reason) : $"{KeepReasons.Describe(Reason)}: {Detail}";

    /// <summary>
    /// The quantizable candidate as the <see cref="LinearNode"/> a rewrite computes with; its weight chain must have been
    /// folded first (the fold-weights pass runs first in every preset).
    /// </summary>
    public LinearNode RequireLinear(Graph graph) => LinearNode.TryCreate(graph, Node)
        ?? throw new InvalidOperationException($"linear '{QualifiedName}' reads its weight through {WeightVia}; fold its weight chain first (the fold-weights pass)");

    /// <summary>The name and, for a body's node, where it lives: "If_3/then_branch/MatMul_1".</summary>
    public string QualifiedName => Scope is null ? Name : $"{Scope}/{Name}";
}

/// <summary>Every MatMul/Gemm of a model with its verdict, main graph first, then bodies in node order.</summary>
public sealed class LinearTable(IReadOnlyList<LinearCandidate> rows)
{
    public IReadOnlyList<LinearCandidate> All { get; } = rows;

    public int Count => All.Count;

    public IEnumerable<LinearCandidate> Quantizable => All.Where(c => c.Quantizable);

    public IEnumerable<LinearCandidate> Kept => All.Where(c => !c.Quantizable);

    /// <summary>The candidate of a node by name and scope, or null.</summary>
    public LinearCandidate? Find(string name, string? scope = null) => All.FirstOrDefault(c => c.Name == name && c.Scope == scope);
}
