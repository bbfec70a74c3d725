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
    /// <remarks>
    /// Linears inside If/Loop/Scan bodies that read a main-graph activation join its group (<see cref="BodyConsumer"/>):
    /// the body then counts as a reader that only linears of the group look through, so a norm's gamma can still take s.
    /// </remarks>
    public static IReadOnlyList<SmoothingGroup> Find(Graph graph)
    {
        var linears = LinearNode.FindAll(graph);
        var inBodies = BodyConsumers.FindAll(graph);
        var groups = new List<SmoothingGroup>();
        foreach (var (activation, consumers) in ByActivation(graph, linears, inBodies))
        {
            var body = inBodies.GetValueOrDefault(activation) ?? [];
            int k = consumers.Count > 0 ? consumers[0].K : body[0].K;
            if (consumers.Any(c => c.K != k) || body.Any(c => c.K != k))
                continue;
            groups.Add(Build(graph, activation, consumers, body, linears));
        }
        return groups;
    }

    // Activations in the order of their first reader (a body's owner for body consumers).
    private static IEnumerable<(string Activation, List<LinearNode> Consumers)> ByActivation(Graph graph, IReadOnlyList<LinearNode> linears,
        Dictionary<string, List<BodyConsumer>> inBodies)
    {
        var map = new Dictionary<string, List<LinearNode>>(StringComparer.Ordinal);
        var first = new Dictionary<string, int>(StringComparer.Ordinal);
        var position = new Dictionary<NodeProto, int>(ReferenceEqualityComparer.Instance);
        var byName = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var node in graph.TopologicalOrder())
        {
            position[node] = position.Count;
            if (node.Name.Length > 0)
                byName.TryAdd(node.Name, position[node]);
        }
        foreach (var linear in linears.OrderBy(l => position[l.Node]))
        {
            if (!map.TryGetValue(linear.Activation, out var list))
            {
                map[linear.Activation] = list = new List<LinearNode>();
                first[linear.Activation] = position[linear.Node];
            }
            list.Add(linear);
        }
        foreach (var (activation, body) in inBodies)
        {
            map.TryAdd(activation, []);
            int at = body.Min(c => byName.GetValueOrDefault(c.Owner, int.MaxValue));
            first[activation] = Math.Min(first.GetValueOrDefault(activation, int.MaxValue), at);
        }
        return map.Keys.OrderBy(a => first[a]).Select(a => (a, map[a]));
    }

    private static SmoothingGroup Build(Graph graph, string activation, List<LinearNode> consumers, List<BodyConsumer> body,
        IReadOnlyList<LinearNode> linears)
    {
        var readers = consumers.Select(c => c.Node).ToList();
        // A body's owner that reads the activation for the group's linears only counts as one of them: scaling in place
        // reaches nothing else. An owner whose body also reads it otherwise is not added, so only a Mul can smooth.
        foreach (var owner in body.Select(c => c.Owner).Distinct())
            if (graph.Nodes.FirstOrDefault(n => n.Name == owner) is { } node && BodyConsumers.ReadsOnlyThrough(graph, node, activation, body))
                readers.Add(node);
        var producer = ActivationProducer.Classify(graph, activation, linears);
        int channels = consumers.Count > 0 ? consumers[0].K : body[0].K;
        var weightType = consumers.Count > 0 ? consumers[0].WeightType : body[0].WeightType;
        if (ActivationReaders.OnlyLinears(graph, activation, readers))
        {
            if (producer.Norm is { } norm && graph.GetConstant(norm.Gamma)?.ElementCount == channels
                && (norm.Beta is null || graph.GetConstant(norm.Beta)?.ElementCount == channels))
            {
                var fold = new NormGammaFold(producer.Kind, norm, activation, readers);
                if (fold.IsExact(graph))
                    return new SmoothingGroup(activation, producer.Kind, fold, consumers, body);
            }
            if (producer.Linear is { } source && source.N == channels && !consumers.Any(c => ReferenceEquals(c.Node, source.Node)))
                return new SmoothingGroup(activation, ProducerKind.MatMul, new LinearColumnsFold(source, null, activation, readers), consumers, body);
            if (ChannelPath.Trace(graph, activation, channels, linears) is { } path)
                return new SmoothingGroup(activation, ProducerKind.MatMul, new LinearColumnsFold(path.Source, path, activation, readers), consumers, body);
        }
        // The Mul feeds the main-graph linears and the body ones; the bodies' other readers keep the unscaled value.
        return new SmoothingGroup(activation, producer.Kind,
            new InsertedMulFold(activation, consumers.Select(c => c.Node).ToList(), weightType, body), consumers, body);
    }
}
