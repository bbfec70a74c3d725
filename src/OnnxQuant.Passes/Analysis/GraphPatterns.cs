using Onnx;
using OnnxQuant.IR;

namespace OnnxQuant.Analysis;

/// <summary>
/// Small pattern steps for matching exported subgraphs backwards from a value: "the producer of X is op T",
/// "one operand of this node is a constant", "X and Y are the same value up to Casts". Matchers compose these.
/// </summary>
public static class GraphPatterns
{
    /// <summary>The producer of <paramref name="value"/> when it is default-domain <paramref name="opType"/>.</summary>
    public static NodeProto? ProducerIs(this Graph graph, string value, string opType) =>
        graph.Producer(value) is { } p && p.IsOnnx(opType) ? p : null;

    /// <summary>
    /// For a binary node with exactly one constant operand: that constant's name and the other operand.
    /// False when both or neither are constant.
    /// </summary>
    public static bool TrySplitConstantOperand(this Graph graph, NodeProto node, out string constant, out string other)
    {
        constant = other = "";
        if (node.Input.Count != 2 || node.Input[0].Length == 0 || node.Input[1].Length == 0)
            return false;
        bool c0 = graph.GetConstant(node.Input[0]) is not null, c1 = graph.GetConstant(node.Input[1]) is not null;
        if (c0 == c1)
            return false;
        (constant, other) = c0 ? (node.Input[0], node.Input[1]) : (node.Input[1], node.Input[0]);
        return true;
    }

    /// <summary>The producer of <paramref name="value"/> when it is <paramref name="opType"/> with one constant operand.</summary>
    public static NodeProto? ProducerWithConstant(this Graph graph, string value, string opType, out string constant, out string other)
    {
        constant = other = "";
        var node = graph.ProducerIs(value, opType);
        return node is not null && graph.TrySplitConstantOperand(node, out constant, out other) ? node : null;
    }

    /// <summary>True when <paramref name="name"/> is a constant holding a single value equal to <paramref name="expected"/>.</summary>
    public static bool IsScalarConstant(this Graph graph, string name, float expected, float tolerance = 0f)
    {
        var t = graph.GetConstant(name);
        if (t is null || t.ElementCount != 1 || !ElementType.IsFloat(t.DataType) && !IsInteger(t.DataType))
            return false;
        double v = ElementType.IsFloat(t.DataType) ? t.ToFloats()[0] : t.ToInt64s()[0];
        return Math.Abs(v - expected) <= tolerance;
    }

    /// <summary>True when <paramref name="name"/> is a constant with a single element (an epsilon, an exponent).</summary>
    public static bool IsScalarConstant(this Graph graph, string name) => graph.GetConstant(name) is { ElementCount: 1 };

    /// <summary>
    /// True when <paramref name="name"/> is a constant per-channel vector: its last axis holds all elements ([C], [1, C], ...),
    /// and there are at least two (a single value cannot carry a per-channel scale).
    /// </summary>
    public static bool IsConstantChannelVector(this Graph graph, string name)
    {
        var t = graph.GetConstant(name);
        return t is not null && ElementType.IsFloat(t.DataType) && t.Shape.Count >= 1 && t.ElementCount >= 2 && t.Shape[^1] == t.ElementCount;
    }

    /// <summary>Follows Cast producers upwards: the value before any chain of Casts.</summary>
    public static string StripCasts(this Graph graph, string value)
    {
        var seen = 0;
        while (graph.ProducerIs(value, "Cast") is { } cast && seen++ < 16)
            value = cast.Input[0];
        return value;
    }

    /// <summary>True when the two values are the same tensor up to Casts on either side.</summary>
    public static bool SameUpToCasts(this Graph graph, string a, string b) =>
        a == b || graph.StripCasts(a) == graph.StripCasts(b);

    /// <summary>Index of <paramref name="value"/> among the node's outputs, or -1.</summary>
    public static int OutputIndex(NodeProto node, string value)
    {
        for (int i = 0; i < node.Output.Count; i++)
            if (node.Output[i] == value)
                return i;
        return -1;
    }

    private static bool IsInteger(TensorProto.Types.DataType t) =>
        t is TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Int32;
}
