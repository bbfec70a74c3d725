using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.IR;

namespace OnnxQuant.Smoothing;

/// <summary>
/// Rewrites one node's constant input in place, keeping its dtype, without touching other readers: a constant that
/// another node also reads (tied weights, a shared gamma) or that a Constant node produces is written to a new
/// initializer and only this node's input is pointed at it.
/// </summary>
internal static class ConstantEdits
{
    /// <summary>Replaces input <paramref name="inputIndex"/> of <paramref name="node"/> by <c>transform(values)</c>, same shape and dtype.</summary>
    public static void Rewrite(Graph graph, NodeProto node, int inputIndex, Action<float[]> transform)
    {
        string name = node.Input[inputIndex];
        var tensor = graph.GetConstant(name) ?? throw new InvalidOperationException($"input {inputIndex} of {node.Describe()} is not a constant");
        var values = tensor.ToFloats();
        transform(values);
        string target = TargetName(graph, node, name);
        graph.SetInitializer(Tensor.FromFloats(target, values, tensor.Shape, tensor.DataType));
        Repoint(graph, node, name, target);
    }

    /// <summary>Writes a new weight for <paramref name="linear"/> (logical [K, N]) through its own storage layout and dtype.</summary>
    public static void RewriteWeight(Graph graph, LinearNode linear, float[] kn)
    {
        string target = TargetName(graph, linear.Node, linear.WeightName);
        graph.SetInitializer(linear.MakeWeight(kn, target));
        Repoint(graph, linear.Node, linear.WeightName, target);
    }

    // The name to write to: the constant itself when only this node reads it and it is an initializer, else a fresh one.
    private static string TargetName(Graph graph, NodeProto node, string name)
    {
        bool ownInitializer = graph.GetInitializer(name) is not null && !graph.IsGraphInput(name) && !graph.IsGraphOutput(name)
            && graph.Consumers(name).All(c => ReferenceEquals(c, node));
        return ownInitializer ? name : graph.UniqueValueName($"{name}_smoothed");
    }

    private static void Repoint(Graph graph, NodeProto node, string from, string to)
    {
        if (from != to)
            graph.ReplaceInput(node, from, to);
    }
}
