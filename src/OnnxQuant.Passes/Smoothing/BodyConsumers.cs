using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.IO;
using OnnxQuant.IR;

namespace OnnxQuant.Smoothing;

/// <summary>One step from a graph into a body: the node holding it (by name) and the attribute ("then_branch", "body").</summary>
public sealed record BodyStep(string Owner, string Attribute);

/// <summary>
/// A constant-weight linear inside an If/Loop/Scan body that reads a main-graph activation as its input 0. It is a
/// member of that activation's smoothing group like a main-graph consumer: its weight rows take s, so the group can be
/// smoothed in place while the body reads the activation (docs/architecture.md, "SmoothQuant").
/// </summary>
public sealed record BodyConsumer(IReadOnlyList<BodyStep> Path, string Name, int K, int N, TensorProto.Types.DataType WeightType)
{
    /// <summary>The top-level node holding the body (an If, Loop or Scan of the main graph).</summary>
    public string Owner => Path[0].Owner;

    /// <summary>"branch/then_branch/q_proj": the path `inspect` prints.</summary>
    public string QualifiedName => $"{string.Join("/", Path.Select(p => $"{p.Owner}/{p.Attribute}"))}/{Name}";

    /// <summary>The scope <see cref="LinearAnalysis"/> gives the node ("branch/then_branch").</summary>
    public string Scope => string.Join("/", Path.Select(p => $"{p.Owner}/{p.Attribute}"));
}

/// <summary>Finds body consumers of main-graph activations and edits them through <see cref="SubgraphBodies"/>.</summary>
public static class BodyConsumers
{
    /// <summary>Every body linear of <paramref name="graph"/> reading a value the main graph defines, by that value.</summary>
    public static Dictionary<string, List<BodyConsumer>> FindAll(Graph graph)
    {
        var result = new Dictionary<string, List<BodyConsumer>>(StringComparer.Ordinal);
        foreach (var owner in graph.Nodes)
        {
            if (owner.Name.Length == 0)
                continue;
            foreach (var attribute in SubgraphBodies.Attributes(owner))
                Collect(graph, SubgraphBodies.Open(graph, owner, attribute), [new BodyStep(owner.Name, attribute)], result);
        }
        return result;
    }

    private static void Collect(Graph main, Graph body, List<BodyStep> path, Dictionary<string, List<BodyConsumer>> result)
    {
        foreach (var node in body.Nodes)
        {
            if (node.Name.Length > 0 && LinearNode.TryCreate(body, node) is { } linear && DefinedByMain(main, body, linear.Activation))
            {
                if (!result.TryGetValue(linear.Activation, out var list))
                    result[linear.Activation] = list = [];
                list.Add(new BodyConsumer(path.ToList(), node.Name, linear.K, linear.N, linear.WeightType));
            }
            if (node.Name.Length == 0)
                continue;
            foreach (var attribute in SubgraphBodies.Attributes(node))
                Collect(main, SubgraphBodies.Open(body, node, attribute), [.. path, new BodyStep(node.Name, attribute)], result);
        }
    }

    // A value no body on the way defines and the main graph computes or takes as input (calibration records those).
    private static bool DefinedByMain(Graph main, Graph body, string value)
    {
        for (var g = body; g is not null && !ReferenceEquals(g, main); g = g.Outer)
            if (g.Producer(value) is not null || g.IsGraphInput(value) || g.GetInitializer(value) is not null)
                return false;
        return main.Producer(value) is not null || main.IsGraphInput(value);
    }

    /// <summary>
    /// True when every read of <paramref name="activation"/> inside <paramref name="owner"/>'s bodies is one of
    /// <paramref name="members"/> (or looks only at its shape): scaling the activation in place then reaches only
    /// linears whose rows take s.
    /// </summary>
    public static bool ReadsOnlyThrough(Graph graph, NodeProto owner, string activation, IReadOnlyList<BodyConsumer> members)
    {
        if (owner.Name.Length == 0)
            return false;
        foreach (var attribute in SubgraphBodies.Attributes(owner))
            if (!OnlyMembers(SubgraphBodies.Open(graph, owner, attribute), [new BodyStep(owner.Name, attribute)], activation, members))
                return false;
        return true;
    }

    private static bool OnlyMembers(Graph body, List<BodyStep> path, string activation, IReadOnlyList<BodyConsumer> members)
    {
        if (body.IsGraphOutput(activation))
            return false;
        foreach (var reader in body.Consumers(activation))
        {
            bool member = members.Any(m => m.Name == reader.Name && m.Path.SequenceEqual(path)) && reader.InputAt(0) == activation
                && reader.Input.Count(i => i == activation) == 1;
            if (member || ActivationReaders.ReadsShapeOnly(reader))
                continue;
            if (!reader.Input.Contains(activation) && reader.Name.Length > 0 && SubgraphBodies.Attributes(reader).Any())
            {
                // A nested body reads it: look inside.
                foreach (var attribute in SubgraphBodies.Attributes(reader))
                    if (!OnlyMembers(SubgraphBodies.Open(body, reader, attribute), [.. path, new BodyStep(reader.Name, attribute)], activation, members))
                        return false;
                continue;
            }
            return false;
        }
        return true;
    }

    /// <summary>Computes something from the body consumer as it is now, without changing the model.</summary>
    public static T Read<T>(Graph graph, BodyConsumer consumer, Func<Graph, LinearNode, T> read)
    {
        T result = default!;
        Edit(graph, consumer, (body, linear) =>
        {
            result = read(body, linear);
            return false;
        });
        return result;
    }

    /// <summary>Runs <paramref name="edit"/> on the body consumer in its own body and commits the body when it returns true.</summary>
    public static void Edit(Graph graph, BodyConsumer consumer, Func<Graph, LinearNode, bool> edit) => EditAt(graph, consumer, 0, edit);

    private static bool EditAt(Graph graph, BodyConsumer consumer, int depth, Func<Graph, LinearNode, bool> edit)
    {
        var step = consumer.Path[depth];
        var owner = graph.Nodes.FirstOrDefault(n => n.Name == step.Owner)
            ?? throw new InvalidOperationException($"body owner '{step.Owner}' of '{consumer.QualifiedName}' is gone");
        var body = SubgraphBodies.Open(graph, owner, step.Attribute);
        bool changed;
        if (depth + 1 < consumer.Path.Count)
            changed = EditAt(body, consumer, depth + 1, edit);
        else
        {
            var node = body.Nodes.FirstOrDefault(n => n.Name == consumer.Name)
                ?? throw new InvalidOperationException($"'{consumer.QualifiedName}' is gone");
            var linear = LinearNode.TryCreate(body, node)
                ?? throw new InvalidOperationException($"'{consumer.QualifiedName}' is no longer a constant-weight linear");
            changed = edit(body, linear);
        }
        if (changed)
            SubgraphBodies.Commit(graph, owner, step.Attribute, body);
        return changed;
    }
}
