using System.Numerics.Tensors;
using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.IR;

namespace OnnxQuant.Smoothing;

/// <summary>
/// Folds s into a preceding linear: its weight's output columns (and bias) divided by s. The linear either produces the
/// activation directly, or reaches it along a <see cref="ChannelPath"/> (v_proj through attention to o_proj, up_proj
/// through <c>SiLU(gate) * up</c> to down_proj); activation channel p is then source column <see cref="Map"/>[p], and
/// through a KV repeat several channels read one column (<see cref="SmoothingGroup.Ties"/>).
/// </summary>
public sealed class LinearColumnsFold : IFoldTarget
{
    private readonly ChannelPath? _path;
    private readonly IReadOnlyList<NodeProto> _readers;

    internal LinearColumnsFold(LinearNode source, ChannelPath? path, string activation, IReadOnlyList<NodeProto> readers)
    {
        Source = source;
        _path = path;
        Activation = activation;
        _readers = readers;
        Map = path?.Map ?? Enumerable.Range(0, source.N).ToArray();
    }

    public FoldKind Kind => FoldKind.LinearColumns;

    /// <summary>The linear whose columns take 1/s.</summary>
    public LinearNode Source { get; }

    public string Activation { get; }

    /// <summary>Activation channel p is the source's output column Map[p].</summary>
    public IReadOnlyList<int> Map { get; }

    /// <summary>The nodes between the source and the activation (empty when the source produces it).</summary>
    public IReadOnlyList<NodeProto> PathNodes => _path?.Nodes ?? Array.Empty<NodeProto>();

    /// <summary>"direct", "attention", "gated Mul"...</summary>
    public string Pattern => _path?.Pattern ?? "direct";

    public string Description => $"{Source.Node.Describe()} columns{(Source.Bias is null ? "" : "+bias")}" + (_path is null ? "" : $" via {Pattern}");

    public bool IsExact(Graph graph) =>
        ActivationReaders.OnlyLinears(graph, Activation, _readers)
        && (_path?.StillHolds(graph) ?? (LinearNode.TryCreate(graph, Source.Node) is { } s && s.Output == Activation));

    public void Apply(Graph graph, ReadOnlySpan<float> scale)
    {
        var linear = LinearNode.TryCreate(graph, Source.Node)
            ?? throw new InvalidOperationException($"{Source.Node.Describe()} is no longer a constant-weight linear");
        if (scale.Length != Map.Count || linear.N != Source.N)
            throw new ArgumentException($"{Source.Node.Describe()}: {linear.N} columns, {Map.Count} channels, scale has {scale.Length}");
        var columnScale = new float[linear.N];
        for (int p = 0; p < Map.Count; p++)
        {
            // Channels copied from one column (a KV repeat) can only take that column's one factor.
            float previous = columnScale[Map[p]];
            if (previous != 0 && Math.Abs(previous - scale[p]) > 1e-6f * previous)
                throw new ArgumentException($"{Source.Node.Describe()}: channels {Map.ToList().IndexOf(Map[p])} and {p} read column {Map[p]} but have different scales");
            columnScale[Map[p]] = scale[p];
        }

        var kn = linear.ReadWeightKN(graph);
        DivideColumns(kn, linear.K, linear.N, columnScale);
        ConstantEdits.RewriteWeight(graph, linear, kn);

        if (linear.Bias is { } bias)
        {
            var biasNode = bias.AddNode ?? linear.Node;
            int index = bias.AddNode is null ? 2 : biasNode.Input.IndexOf(bias.Name);
            ConstantEdits.Rewrite(graph, biasNode, index, values => TensorPrimitives.Divide(values, columnScale, values));
        }
    }

    /// <summary>Divides column c of row-major [rows, cols] by scale[c]; rows in parallel when large.</summary>
    internal static void DivideColumns(float[] matrix, int rows, int cols, float[] scale)
    {
        if ((long)rows * cols < 1 << 16)
        {
            for (int r = 0; r < rows; r++)
                TensorPrimitives.Divide(matrix.AsSpan(r * cols, cols), scale, matrix.AsSpan(r * cols, cols));
            return;
        }
        Parallel.For(0, rows, r => TensorPrimitives.Divide(matrix.AsSpan(r * cols, cols), scale, matrix.AsSpan(r * cols, cols)));
    }
}
