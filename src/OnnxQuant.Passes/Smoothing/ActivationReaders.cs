using Onnx;
using OnnxQuant.IR;

namespace OnnxQuant.Smoothing;

/// <summary>Who reads an activation, as far as scaling it in place is concerned.</summary>
internal static class ActivationReaders
{
    /// <summary>Readers that look only at the tensor's shape, not its values: scaling cannot change what they compute.</summary>
    public static bool ReadsShapeOnly(NodeProto node) => node.IsOnnx("Shape") || node.IsOnnx("Size");

    /// <summary>True when only <paramref name="linears"/> (and shape readers) see the values of <paramref name="activation"/>.</summary>
    public static bool OnlyLinears(Graph graph, string activation, IEnumerable<NodeProto> linears)
    {
        if (graph.IsGraphOutput(activation))
            return false;
        var allowed = linears.ToHashSet(ReferenceEqualityComparer.Instance);
        return graph.Consumers(activation).All(n => allowed.Contains(n) || ReadsShapeOnly(n));
    }

    /// <summary>Readers other than the linears and shape readers: what an in-place scale would wrongly reach.</summary>
    public static IEnumerable<NodeProto> Others(Graph graph, string activation, IEnumerable<NodeProto> linears)
    {
        var allowed = linears.ToHashSet(ReferenceEqualityComparer.Instance);
        return graph.Consumers(activation).Where(n => !allowed.Contains(n) && !ReadsShapeOnly(n));
    }
}
