using Onnx;

namespace OnnxQuant.IR;

/// <summary>
/// The producer and consumer indexes of a <see cref="Graph"/>, kept right by every edit the graph makes (onnx-ir's
/// use-lists): a pass never rebuilds them and never tells the graph that it changed a node behind its back.
/// <see cref="Mismatches"/> compares them with freshly built ones; the pipeline runs it after every pass in tests.
/// </summary>
internal sealed class GraphIndex
{
    private readonly Dictionary<string, NodeProto> _producers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<NodeProto>> _consumers = new(StringComparer.Ordinal);

    public GraphIndex(IEnumerable<NodeProto> nodes)
    {
        foreach (var node in nodes)
            Add(node);
    }

    public NodeProto? Producer(string value) => _producers.GetValueOrDefault(value);

    public IReadOnlyList<NodeProto> Consumers(string value) =>
        _consumers.TryGetValue(value, out var list) ? list : Array.Empty<NodeProto>();

    public void Add(NodeProto node)
    {
        foreach (var o in node.Output)
            if (o.Length > 0)
                _producers[o] = node;
        foreach (var i in Graph.NodeInputs(node).Distinct())
            AddUse(i, node);
    }

    public void Remove(NodeProto node)
    {
        foreach (var o in node.Output)
            if (o.Length > 0 && _producers.TryGetValue(o, out var p) && ReferenceEquals(p, node))
                _producers.Remove(o);
        foreach (var i in Graph.NodeInputs(node).Distinct())
            RemoveUse(i, node);
    }

    /// <summary>Re-indexes one node after its inputs, outputs or subgraphs were edited (reads <paramref name="before"/>, the values it read then).</summary>
    public void Update(NodeProto node, IReadOnlyCollection<string> before, IReadOnlyCollection<string> outputsBefore)
    {
        foreach (var o in outputsBefore)
            if (o.Length > 0 && _producers.TryGetValue(o, out var p) && ReferenceEquals(p, node))
                _producers.Remove(o);
        foreach (var o in node.Output)
            if (o.Length > 0)
                _producers[o] = node;
        var now = Graph.NodeInputs(node).ToHashSet(StringComparer.Ordinal);
        foreach (var old in before)
            if (!now.Contains(old))
                RemoveUse(old, node);
        foreach (var value in now)
            if (!before.Contains(value))
                AddUse(value, node);
    }

    private void AddUse(string value, NodeProto node)
    {
        if (!_consumers.TryGetValue(value, out var list))
            _consumers[value] = list = new List<NodeProto>();
        if (!list.Any(n => ReferenceEquals(n, node)))
            list.Add(node);
    }

    private void RemoveUse(string value, NodeProto node)
    {
        if (!_consumers.TryGetValue(value, out var list))
            return;
        list.RemoveAll(n => ReferenceEquals(n, node));
        if (list.Count == 0)
            _consumers.Remove(value);
    }

    /// <summary>Where this index disagrees with one built afresh from <paramref name="nodes"/> (empty when it is right).</summary>
    public IReadOnlyList<string> Mismatches(IEnumerable<NodeProto> nodes)
    {
        var fresh = new GraphIndex(nodes);
        var problems = new List<string>();
        foreach (var value in _producers.Keys.Union(fresh._producers.Keys, StringComparer.Ordinal))
        {
            var mine = Producer(value);
            var theirs = fresh.Producer(value);
            if (!ReferenceEquals(mine, theirs))
                problems.Add($"producer of '{value}': index says {mine?.Name ?? "none"}, the nodes say {theirs?.Name ?? "none"}");
        }
        foreach (var value in _consumers.Keys.Union(fresh._consumers.Keys, StringComparer.Ordinal))
        {
            var mine = Consumers(value).ToHashSet(ReferenceEqualityComparer.Instance);
            var theirs = fresh.Consumers(value).ToHashSet(ReferenceEqualityComparer.Instance);
            if (!mine.SetEquals(theirs))
                problems.Add($"readers of '{value}': index says [{Names(Consumers(value))}], the nodes say [{Names(fresh.Consumers(value))}]");
        }
        return problems;
    }

    private static string Names(IEnumerable<NodeProto> nodes) => string.Join(", ", nodes.Select(n => n.Name));
}
