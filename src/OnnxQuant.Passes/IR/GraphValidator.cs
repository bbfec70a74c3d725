namespace OnnxQuant.IR;

/// <summary>
/// Structural checks run after every pass (MLIR's rule: a rewrite keeps the graph valid after every step):
/// every input is defined, every value has one producer, node names are unique, there is no cycle.
/// </summary>
public static class GraphValidator
{
    public static IReadOnlyList<string> Problems(Graph graph)
    {
        var problems = new List<string>();
        var defined = new HashSet<string>(StringComparer.Ordinal);
        foreach (var i in graph.Inputs) defined.Add(i.Name);
        foreach (var name in graph.Initializers.Keys) defined.Add(name);

        var producedBy = new Dictionary<string, string>(StringComparer.Ordinal);
        var nodeNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
        {
            if (node.Name.Length > 0 && !nodeNames.Add(node.Name))
                problems.Add($"node name '{node.Name}' is used twice");
            foreach (var o in node.Output)
            {
                if (o.Length == 0) continue;
                if (producedBy.TryGetValue(o, out var other))
                    problems.Add($"value '{o}' is produced by both '{other}' and '{node.Name}'");
                else if (graph.IsGraphInput(o) || graph.Initializers.ContainsKey(o))
                    problems.Add($"value '{o}' is a graph input or initializer and also produced by '{node.Name}'");
                producedBy[o] = node.Name;
                defined.Add(o);
            }
        }
        foreach (var node in graph.Nodes)
            foreach (var i in Graph.NodeInputs(node))
                if (!defined.Contains(i))
                    problems.Add($"node '{node.Name}' ({node.OpType}) reads '{i}', which nothing produces");
        foreach (var o in graph.Outputs)
            if (!defined.Contains(o.Name))
                problems.Add($"graph output '{o.Name}' is not produced");
        if (problems.Count == 0)
        {
            try { graph.TopologicalOrder(); }
            catch (GraphValidationException e) { problems.Add(e.Message); }
        }
        return problems;
    }

    public static void Validate(Graph graph, string context)
    {
        var problems = Problems(graph);
        if (problems.Count > 0)
            throw new GraphValidationException($"{context}: the graph is invalid: {string.Join("; ", problems.Take(10))}");
    }
}
