using Onnx;
using OnnxQuant.IR;

namespace OnnxQuant.IO;

/// <summary>
/// If/Loop/Scan bodies as graphs of their own: <see cref="Open"/> gives a <see cref="Graph"/> over a copy of the body
/// (reading the enclosing graph's constants through <see cref="Graph.Outer"/>), a pass rewrites it like any graph, and
/// <see cref="Commit"/> puts it back through the owner's graph, which keeps its indexes right. Body tensors stay inline
/// (the loader inlined them), so a body's new weights are written inside the model proto.
/// </summary>
public static class SubgraphBodies
{
    /// <summary>The names of <paramref name="node"/>'s attributes that hold one subgraph (If's branches, Loop's and Scan's body).</summary>
    public static IEnumerable<string> Attributes(NodeProto node) =>
        node.Attribute.Where(a => a.G is not null).Select(a => a.Name).ToList();

    /// <summary>"If_3/then_branch", nested below <paramref name="outer"/>.</summary>
    public static string Scope(string? outer, NodeProto node, string attribute) =>
        outer is null ? $"{node.Name}/{attribute}" : $"{outer}/{node.Name}/{attribute}";

    public static Graph Open(Graph outer, NodeProto node, string attribute)
    {
        var body = node.Attribute.First(a => a.Name == attribute && a.G is not null).G.Clone();
        var reader = new TensorProtoReader(null); // body tensors are inline (the loader inlined them)
        var graph = new Graph(body.Name, body.Node, body.Input, body.Output, body.Initializer.Select(reader.Read), body.ValueInfo, body.DocString)
        {
            Outer = outer,
        };
        graph.ReserveValueNames(outer.UsedValueNames);
        return graph;
    }

    public static void Commit(Graph outer, NodeProto node, string attribute, Graph body)
    {
        var proto = new GraphProto { Name = body.Name, DocString = body.DocString };
        proto.Node.AddRange(body.Nodes);
        proto.Input.AddRange(body.Inputs);
        proto.Output.AddRange(body.Outputs);
        proto.ValueInfo.AddRange(body.ValueInfo);
        proto.Initializer.AddRange(body.Initializers.Values.Select(TensorProtoWriter.Inline));
        outer.SetSubgraph(node, attribute, proto);
    }

    /// <summary>
    /// Runs <paramref name="rewrite"/> on <paramref name="graph"/> and then on every body below it (depth first), committing
    /// each body it changed. Returns whether anything changed. The scope passed along is null for the main graph.
    /// </summary>
    public static bool RewriteAll(Graph graph, string? scope, Func<Graph, string?, bool> rewrite)
    {
        bool changed = rewrite(graph, scope);
        foreach (var node in graph.Nodes.ToList())
            foreach (var attribute in Attributes(node))
            {
                var body = Open(graph, node, attribute);
                if (RewriteAll(body, Scope(scope, node, attribute), rewrite))
                {
                    Commit(graph, node, attribute, body);
                    changed = true;
                }
            }
        return changed;
    }
}
