using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.IR;

namespace OnnxQuant.Smoothing;

/// <summary>
/// Folds s into a normalization: gamma (and beta) divided by s. Works for LayerNormalization, SimplifiedLayerNormalization,
/// SkipLayerNormalization and SkipSimplifiedLayerNormalization (gamma input 2, beta input 3; never the skip or the
/// pre-norm bias, and the residual sum output is untouched) and the decomposed forms (the final Mul and Add).
/// </summary>
public sealed class NormGammaFold : IFoldTarget
{
    private readonly IReadOnlyList<NodeProto> _readers;
    private readonly int _gammaIndex;
    private readonly int _betaIndex;

    public NormGammaFold(ProducerKind kind, NormMatch norm, string activation, IReadOnlyList<NodeProto> readers)
    {
        NormKind = kind;
        Norm = norm;
        Activation = activation;
        _readers = readers;
        bool skip = norm.GammaNode.OpType.StartsWith("Skip", StringComparison.Ordinal);
        _gammaIndex = IndexOf(norm.GammaNode, norm.Gamma, skip ? 2 : 1);
        _betaIndex = norm.BetaNode is { } b ? IndexOf(b, norm.Beta!, skip ? 3 : 2) : -1;
    }

    public FoldKind Kind => FoldKind.NormGamma;

    public ProducerKind NormKind { get; }

    public NormMatch Norm { get; }

    public string Activation { get; }

    public string Description => $"{NormKind} {Norm.GammaNode.Describe()} gamma{(Norm.Beta is null ? "" : "+beta")}";

    public bool IsExact(Graph graph) =>
        Norm.Output == Activation && ActivationReaders.OnlyLinears(graph, Activation, _readers)
        && graph.GetConstant(Norm.GammaNode.Input[_gammaIndex]) is not null;

    public void Apply(Graph graph, ReadOnlySpan<float> scale)
    {
        var s = scale.ToArray();
        Divide(graph, Norm.GammaNode, _gammaIndex, s);
        if (Norm.BetaNode is { } betaNode)
            Divide(graph, betaNode, _betaIndex, s);
    }

    // Fused ops hold gamma/beta at fixed inputs (1/2, or 2/3 for Skip*); a decomposed Mul/Add at its constant side.
    // Found once, by position: an edit may rename the constant.
    private static int IndexOf(NodeProto node, string name, int fusedIndex)
    {
        if (fusedIndex < node.Input.Count && node.Input[fusedIndex] == name)
            return fusedIndex;
        int i = node.Input.IndexOf(name);
        return i >= 0 ? i : throw new ArgumentException($"{node.Describe()} does not read '{name}'");
    }

    private static void Divide(Graph graph, NodeProto node, int index, float[] s) =>
        ConstantEdits.Rewrite(graph, node, index, values =>
        {
            if (values.Length != s.Length)
                throw new InvalidOperationException($"{node.Describe()}: {values.Length} channels, scale has {s.Length}");
            System.Numerics.Tensors.TensorPrimitives.Divide(values, s, values);
        });
}
