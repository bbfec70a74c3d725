using System.Numerics.Tensors;
using Tensor = OnnxQuant.IR.Tensor;
using Onnx;
using OnnxQuant.IO;
using OnnxQuant.IR;

namespace OnnxQuant.Analysis;

/// <summary>
/// A MatMul or Gemm whose weight is a constant (an initializer or a Constant node) of rank 2, seen as the logical
/// <c>Y = X[..., K] · W[K, N] (+ bias[N])</c> whatever the weight's storage: Gemm transB stores W as [N, K], Gemm alpha
/// scales it, fp16/bf16 store it narrower. Passes read and write the weight through <see cref="ReadWeightKN"/> and
/// <see cref="MakeWeight"/>, so they never handle the layout themselves.
/// </summary>
/// <remarks>
/// Not linear nodes: a MatMul whose weight is computed (attention's q·kᵀ), a Gemm with transA = 1 (the activation would
/// be read transposed), a Gemm whose C is not a constant broadcast as [N] (a per-row addend is not a bias).
/// </remarks>
public sealed class LinearNode
{
    private LinearNode(NodeProto node, string weightName, int k, int n, TensorProto.Types.DataType weightType,
        bool transposed, float alpha, LinearBias? bias, bool weightIsConstantNode)
    {
        Node = node;
        WeightName = weightName;
        K = k;
        N = n;
        WeightType = weightType;
        IsTransposed = transposed;
        Alpha = alpha;
        Bias = bias;
        WeightIsConstantNode = weightIsConstantNode;
    }

    public NodeProto Node { get; }

    public string Name => Node.Name;

    /// <summary>"MatMul" or "Gemm".</summary>
    public string OpType => Node.OpType;

    /// <summary>The activation the node reads (input 0).</summary>
    public string Activation => Node.Input[0];

    public string WeightName { get; }

    /// <summary>Input channels (rows of the logical weight).</summary>
    public int K { get; }

    /// <summary>Output channels (columns of the logical weight).</summary>
    public int N { get; }

    public TensorProto.Types.DataType WeightType { get; }

    /// <summary>True when the weight is stored [N, K] (Gemm transB = 1).</summary>
    public bool IsTransposed { get; }

    /// <summary>Gemm's alpha; 1 for MatMul. Already applied by <see cref="ReadWeightKN"/>.</summary>
    public float Alpha { get; }

    public LinearBias? Bias { get; }

    /// <summary>True when the weight is a Constant node's output rather than an initializer.</summary>
    public bool WeightIsConstantNode { get; }

    /// <summary>The value carrying the node's result after its bias (the bias Add's output for a MatMul with bias).</summary>
    public string Output => Bias?.AddNode?.Output[0] ?? Node.Output[0];

    /// <summary>Every constant-weight MatMul and Gemm of the graph, in node order.</summary>
    public static IReadOnlyList<LinearNode> FindAll(Graph graph)
    {
        var result = new List<LinearNode>();
        foreach (var node in graph.Nodes)
            if (TryCreate(graph, node) is { } linear)
                result.Add(linear);
        return result;
    }

    /// <summary>
    /// The node seen as a linear, or null when it is not one: <see cref="LinearAnalysis"/> keeps it for a structural
    /// reason, or its weight reaches it through steps not folded yet (FoldWeightChainsPass folds them).
    /// </summary>
    public static LinearNode? TryCreate(Graph graph, NodeProto node)
    {
        if (!LinearAnalysis.IsLinearOp(node))
            return null;
        var facts = LinearAnalysis.Inspect(graph, node);
        if (facts.Reason != KeepReason.None || facts.Chain is not { IsDirect: true } chain)
            return null;
        return new LinearNode(node, chain.Root, facts.K, facts.N, chain.DataType, facts.Transposed, facts.Alpha, facts.Bias,
            graph.GetInitializer(chain.Root) is null);
    }

    // A MatMul's bias is the Add that is the only reader of its output and adds a constant [N].
    internal static LinearBias? FindMatMulBias(Graph graph, NodeProto matmul, int n)
    {
        string output = matmul.Output[0];
        if (graph.IsGraphOutput(output))
            return null;
        var consumers = graph.Consumers(output);
        if (consumers.Count != 1 || !consumers[0].IsOnnx("Add") || consumers[0].Input.Count != 2)
            return null;
        var add = consumers[0];
        if (add.Input[0] == add.Input[1])
            return null;
        string other = add.Input[0] == output ? add.Input[1] : add.Input[0];
        return ConstantVectorBias(graph, other, n, add, 1f);
    }

    internal static LinearBias? ConstantVectorBias(Graph graph, string name, int n, NodeProto? add, float scale)
    {
        var t = graph.GetConstant(name);
        if (t is null || !ElementType.IsFloat(t.DataType) || t.ElementCount != n || t.Shape.Count == 0 || t.Shape[^1] != n)
            return null;
        return new LinearBias(name, add, scale);
    }

    /// <summary>The effective weight as row-major [K, N] floats (transposed back and alpha applied where needed).</summary>
    public float[] ReadWeightKN(Graph graph)
    {
        var stored = WeightTensor(graph).ToFloats();
        ModelChecks.EnsureFinite(stored, WeightName, null, $"{OpType} '{Name}'");
        float[] kn = IsTransposed ? Transpose(stored, N, K) : stored;
        if (Alpha != 1f)
            TensorPrimitives.Multiply(kn, Alpha, kn);
        return kn;
    }

    /// <summary>
    /// A weight tensor holding the logical <paramref name="kn"/> in this node's storage: layout ([N, K] for transB), dtype,
    /// and divided by alpha so the node still computes <c>X · kn</c>. Named <paramref name="name"/> (default: the weight's name).
    /// </summary>
    public Tensor MakeWeight(ReadOnlySpan<float> kn, string? name = null)
    {
        if (kn.Length != (long)K * N)
            throw new ArgumentException($"weight of '{Node.Name}' needs {K}x{N} values, got {kn.Length}");
        long[] shape = IsTransposed ? [N, K] : [K, N];
        // The common case (MatMul, alpha 1) encodes straight from kn: no second fp32 copy of a weight that may be 180 MB.
        if (!IsTransposed && Alpha == 1f)
            return Tensor.FromFloats(name ?? WeightName, kn, shape, WeightType);
        LargeAllocations.BeforeAllocating((long)kn.Length * sizeof(float));
        float[] stored = IsTransposed ? Transpose(kn.ToArray(), K, N) : kn.ToArray();
        if (Alpha != 1f)
            TensorPrimitives.Divide(stored, Alpha, stored);
        return Tensor.FromFloats(name ?? WeightName, stored, shape, WeightType);
    }

    /// <summary>The bias as [N] floats (Gemm's beta applied), or null when there is none.</summary>
    public float[]? ReadBias(Graph graph)
    {
        if (Bias is null)
            return null;
        var values = (graph.GetConstant(Bias.Name) ?? throw new InvalidOperationException($"bias '{Bias.Name}' of '{Node.Name}' is gone")).ToFloats();
        if (Bias.Scale != 1f)
            TensorPrimitives.Multiply(values, Bias.Scale, values);
        return values;
    }

    private Tensor WeightTensor(Graph graph) =>
        graph.GetConstant(WeightName) ?? throw new InvalidOperationException($"weight '{WeightName}' of '{Node.Name}' is no longer a constant");

    /// <summary>Row-major [rows, cols] to [cols, rows], in cache-friendly tiles, rows split across threads when large.</summary>
    internal static float[] Transpose(float[] source, int rows, int cols)
    {
        var result = new float[source.Length];
        if ((long)rows * cols < 1 << 16)
        {
            TransposeRows(source, result, rows, cols, 0, rows);
            return result;
        }
        const int Band = 64;
        int bands = (rows + Band - 1) / Band;
        Parallel.For(0, bands, b => TransposeRows(source, result, rows, cols, b * Band, Math.Min(rows, (b + 1) * Band)));
        return result;
    }

    private static void TransposeRows(ReadOnlySpan<float> source, Span<float> result, int rows, int cols, int rowStart, int rowEnd)
    {
        const int Tile = 32;
        for (int c0 = 0; c0 < cols; c0 += Tile)
        {
            int c1 = Math.Min(cols, c0 + Tile);
            for (int r = rowStart; r < rowEnd; r++)
            {
                var row = source.Slice(r * cols, cols);
                for (int c = c0; c < c1; c++)
                    result[c * rows + r] = row[c];
            }
        }
    }

    public override string ToString() => $"{Node.Describe()} [{K}x{N}] {ElementType.Name(WeightType)}";
}

/// <summary>
/// A linear's bias: the constant <see cref="Name"/> ([N], or broadcast as [1, N]); for a MatMul the Add node that adds it,
/// for a Gemm null (it is input C) with Gemm's beta as <see cref="Scale"/>.
/// </summary>
public sealed record LinearBias(string Name, NodeProto? AddNode, float Scale);
