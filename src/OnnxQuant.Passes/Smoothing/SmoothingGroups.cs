using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.IR;

namespace OnnxQuant.Smoothing;

/// <summary>Finds the smoothing groups of a graph: every activation read by constant-weight linears, with its best fold target.</summary>
public static class SmoothingGroups
{
    /// <summary>
    /// One group per activation that constant-weight MatMul/Gemm nodes read as input 0, in graph order. The fold target
    /// is the producer when only the group's linears read the activation: a norm's gamma/beta, a preceding linear's
    /// columns, or a linear reached along a channel-preserving path (attention to o_proj, SwiGLU to down_proj).
    /// Otherwise, and for producers nothing can be folded into, an <see cref="InsertedMulFold"/>.
    /// </summary>
    public static IReadOnlyList<SmoothingGroup> Find(Graph graph)
    {
        var linears = LinearNode.FindAll(graph);
        var groups = new List<SmoothingGroup>();
        foreach (var (activation, consumers) in ByActivation(graph, linears))
        {
            if (consumers.Any(c => c.K != consumers[0].K))
                continue;
            groups.Add(Build(graph, activation, consumers, linears));
        }
        return groups;
    }

    private static IEnumerable<(string Activation, List<LinearNode> Consumers)> ByActivation(Graph graph, IReadOnlyList<LinearNode> linears)
    {
        var order = new List<string>();
        var map = new Dictionary<string, List<LinearNode>>(StringComparer.Ordinal);
        var position = new Dictionary<NodeProto, int>(ReferenceEqualityComparer.Instance);
        foreach (var node in graph.TopologicalOrder())
            position[node] = position.Count;
        foreach (var linear in linears.OrderBy(l => position[l.Node]))
        {
            if (!map.TryGetValue(linear.Activation, out var list))
            {
                map[linear.Activation] = list = new List<LinearNode>();
                order.Add(linear.Activation);
            }
            list.Add(linear);
        }
        return order.Select(a => (a, map[a]));
    }

    private static SmoothingGroup Build(Graph graph, string activation, List<LinearNode> consumers, IReadOnlyList<LinearNode> linears)
    {
        var readers = consumers.Select(c => c.Node).ToList();
        var producer = ActivationProducer.Classify(graph, activation, linears);
        int channels = consumers[0].K;
        if (ActivationReaders.OnlyLinears(graph, activation, readers))
        {
            if (producer.Norm is { } norm && graph.GetConstant(norm.Gamma)?.ElementCount == channels
                && (norm.Beta is null || graph.GetConstant(norm.Beta)?.ElementCount == channels))
            {
                var fold = new NormGammaFold(producer.Kind, norm, activation, readers);
                if (fold.IsExact(graph))
                    return new SmoothingGroup(activation, producer.Kind, fold, consumers);
            }
            if (producer.Linear is { } source && source.N == channels && !consumers.Any(c => ReferenceEquals(c.Node, source.Node)))
                return new SmoothingGroup(activation, ProducerKind.MatMul, new LinearColumnsFold(source, null, activation, readers), consumers);
            if (ChannelPath.Trace(graph, activation, channels, linears) is { } path)
                return new SmoothingGroup(activation, ProducerKind.MatMul, new LinearColumnsFold(path.Source, path, activation, readers), consumers);
        }
        return new SmoothingGroup(activation, producer.Kind, new InsertedMulFold(activation, readers, consumers[0].WeightType), consumers);
    }
}
