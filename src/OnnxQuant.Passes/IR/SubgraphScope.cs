using Onnx;

namespace OnnxQuant.IR;

/// <summary>Names an If/Loop/Scan body reads from the enclosing graph (its implicit inputs).</summary>
public static class SubgraphScope
{
    public static IEnumerable<string> OuterReferences(NodeProto node)
    {
        if (node.Attribute.Count == 0)
            return Array.Empty<string>();
        List<string>? result = null;
        foreach (var attr in node.Attribute)
        {
            if (attr.G is not null)
                Collect(attr.G, result ??= new List<string>());
            foreach (var g in attr.Graphs)
                Collect(g, result ??= new List<string>());
        }
        return result is null ? Array.Empty<string>() : result.Distinct();
    }

    private static void Collect(GraphProto graph, List<string> result)
    {
        var defined = new HashSet<string>(StringComparer.Ordinal);
        foreach (var i in graph.Input) defined.Add(i.Name);
        foreach (var t in graph.Initializer) defined.Add(t.Name);
        foreach (var t in graph.SparseInitializer) defined.Add(t.Values.Name);
        foreach (var n in graph.Node)
            foreach (var o in n.Output) defined.Add(o);
        foreach (var n in graph.Node)
        {
            foreach (var i in n.Input)
                if (i.Length > 0 && !defined.Contains(i))
                    result.Add(i);
            foreach (var inner in OuterReferences(n))
                if (!defined.Contains(inner))
                    result.Add(inner);
        }
        foreach (var o in graph.Output)
            if (!defined.Contains(o.Name))
                result.Add(o.Name);
    }

    /// <summary>Every subgraph directly held by a node's attributes.</summary>
    public static IEnumerable<GraphProto> Subgraphs(NodeProto node)
    {
        foreach (var attr in node.Attribute)
        {
            if (attr.G is not null) yield return attr.G;
            foreach (var g in attr.Graphs) yield return g;
        }
    }
}
