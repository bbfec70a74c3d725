using OnnxQuant.IR;

namespace OnnxQuant.IO;

/// <summary>
/// Initializers nothing reads, in the main graph and every body: a rewrite inside a body leaves the outer float weight
/// it replaced behind (the main graph's own rewrite ran before it), and ONNX Runtime warns about each one on load.
/// </summary>
public static class UnusedInitializers
{
    /// <summary>Removes them (bodies first, whose reads keep outer weights alive); returns how many went.</summary>
    public static int Remove(Graph graph)
    {
        int removed = 0;
        foreach (var node in graph.Nodes.ToList())
            foreach (var attribute in SubgraphBodies.Attributes(node))
            {
                var body = SubgraphBodies.Open(graph, node, attribute);
                int inBody = Remove(body);
                if (inBody > 0)
                {
                    SubgraphBodies.Commit(graph, node, attribute, body);
                    removed += inBody;
                }
            }
        return removed + graph.RemoveUnusedInitializers();
    }

    /// <summary>The names of the unused initializers, "scope/name" inside bodies (what a test asserts is empty).</summary>
    public static IReadOnlyList<string> Find(Graph graph, string? scope = null)
    {
        var names = graph.Initializers.Keys
            .Where(n => graph.Consumers(n).Count == 0 && !graph.IsGraphOutput(n) && !graph.IsGraphInput(n))
            .Select(n => scope is null ? n : $"{scope}/{n}").ToList();
        foreach (var node in graph.Nodes)
            foreach (var attribute in SubgraphBodies.Attributes(node))
                names.AddRange(Find(SubgraphBodies.Open(graph, node, attribute), SubgraphBodies.Scope(scope, node, attribute)));
        return names;
    }
}
