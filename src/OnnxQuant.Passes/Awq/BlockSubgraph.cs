using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.IR;
using OnnxQuant.Smoothing;

namespace OnnxQuant.Awq;

/// <summary>
/// The part of the graph a smoothing group feeds up to the next linear: for q/k/v the attention block up to o_proj's
/// output, for gate/up the MLP up to down_proj's output. <see cref="Nodes"/> are the nodes between the group's activation
/// and <see cref="Output"/>; everything else they read is either a constant or a <see cref="SideInputs">side input</see>
/// (the attention mask, rotary tables, positions) that is computed outside the block and recorded once.
/// </summary>
public sealed class BlockSubgraph
{
    private static readonly HashSet<string> NormOps = new(StringComparer.Ordinal)
    {
        "LayerNormalization", "SimplifiedLayerNormalization", "SkipLayerNormalization", "SkipSimplifiedLayerNormalization",
        "RMSNormalization", "ReduceMean",
    };

    private BlockSubgraph(string activation, LinearNode end, IReadOnlyList<NodeProto> nodes, IReadOnlyList<string> sideInputs,
        IReadOnlyList<string> constants, IReadOnlyList<LinearNode> consumers)
    {
        Activation = activation;
        End = end;
        Nodes = nodes;
        SideInputs = sideInputs;
        Constants = constants;
        Consumers = consumers;
    }

    /// <summary>The group's activation: the block's main input.</summary>
    public string Activation { get; }

    /// <summary>The linear that closes the block (o_proj, down_proj); its output after bias is the block output.</summary>
    public LinearNode End { get; }

    public string Output => End.Output;

    /// <summary>The block's nodes in graph order, from the group's consumers to <see cref="End"/> (and its bias Add).</summary>
    public IReadOnlyList<NodeProto> Nodes { get; }

    /// <summary>Non-constant values the block reads that do not depend on the activation (graph inputs included).</summary>
    public IReadOnlyList<string> SideInputs { get; }

    /// <summary>Constants (initializers, Constant-node outputs) the block reads, the consumers' weights excluded.</summary>
    public IReadOnlyList<string> Constants { get; }

    /// <summary>The group's consumers: their weights become inputs of the block model.</summary>
    public IReadOnlyList<LinearNode> Consumers { get; }

    public string Description => $"output of {End.Name}";

    /// <summary>
    /// The block of <paramref name="group"/>, or null when its consumers lead to no single closing linear before a
    /// residual connection or a normalisation (o_proj's and down_proj's own groups, heads, graph outputs).
    /// </summary>
    public static BlockSubgraph? Find(Graph graph, SmoothingGroup group)
    {
        var consumers = group.CurrentConsumers(graph);
        // A block whose linears sit partly in If/Loop bodies cannot be cut out and run on its own.
        if (consumers.Count == 0 || group.BodyConsumers.Count > 0)
            return null;
        string activation = consumers[0].Activation;
        var linears = LinearNode.FindAll(graph);
        var byNode = new Dictionary<NodeProto, LinearNode>(ReferenceEqualityComparer.Instance);
        foreach (var l in linears) byNode[l.Node] = l;
        var ancestors = Ancestors(graph, activation);

        var ends = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var frontier = new Queue<string>(consumers.Select(c => c.Output));
        while (frontier.TryDequeue(out var value))
        {
            if (!seen.Add(value) || graph.IsGraphOutput(value))
                continue;
            foreach (var reader in graph.Consumers(value))
            {
                if (byNode.TryGetValue(reader, out var linear) && linear.Activation == value)
                {
                    ends.Add(reader);
                    continue;
                }
                if (NormOps.Contains(reader.OpType) || IsResidualAdd(graph, reader, value, ancestors))
                    continue;
                foreach (var o in reader.Output)
                    if (o.Length > 0) frontier.Enqueue(o);
            }
        }
        if (ends.Count != 1)
            return null;
        var end = byNode[ends.Single()];
        return Build(graph, activation, end, consumers);
    }

    // An Add one of whose operands is computed before the activation: the residual stream re-entering.
    private static bool IsResidualAdd(Graph graph, NodeProto node, string value, HashSet<string> ancestors) =>
        node.IsOnnx("Add") && node.Input.Any(i => i != value && ancestors.Contains(i) && graph.GetConstant(i) is null);

    private static BlockSubgraph? Build(Graph graph, string activation, LinearNode end, IReadOnlyList<LinearNode> consumers)
    {
        var downstream = Descendants(graph, activation);
        var needed = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<string>();
        stack.Push(end.Output);
        var visited = new HashSet<string>(StringComparer.Ordinal);
        while (stack.TryPop(out var value))
        {
            if (value == activation || !visited.Add(value))
                continue;
            if (graph.Producer(value) is { } node && downstream.Contains(node) && needed.Add(node))
                foreach (var input in Graph.NodeInputs(node))
                    stack.Push(input);
        }
        if (!needed.Contains(end.Node))
            return null;
        var produced = new HashSet<string>(needed.SelectMany(n => n.Output), StringComparer.Ordinal);
        var weights = new HashSet<string>(consumers.Select(c => c.WeightName), StringComparer.Ordinal);
        var side = new List<string>();
        var constants = new List<string>();
        foreach (var node in needed)
            foreach (var input in Graph.NodeInputs(node))
            {
                if (input == activation || produced.Contains(input) || weights.Contains(input) || side.Contains(input) || constants.Contains(input))
                    continue;
                if (graph.GetConstant(input) is not null) constants.Add(input);
                else side.Add(input);
            }
        var order = graph.TopologicalOrder().Where(needed.Contains).ToList();
        return new BlockSubgraph(activation, end, order, side, constants, consumers);
    }

    private static HashSet<string> Ancestors(Graph graph, string value)
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<string>();
        if (graph.Producer(value) is { } p)
            foreach (var i in Graph.NodeInputs(p)) stack.Push(i);
        while (stack.TryPop(out var v))
        {
            if (!result.Add(v)) continue;
            if (graph.Producer(v) is { } node)
                foreach (var i in Graph.NodeInputs(node)) stack.Push(i);
        }
        return result;
    }

    private static HashSet<NodeProto> Descendants(Graph graph, string value)
    {
        var result = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<string>();
        stack.Push(value);
        while (stack.TryPop(out var v))
            foreach (var reader in graph.Consumers(v))
                if (result.Add(reader))
                    foreach (var o in reader.Output)
                        if (o.Length > 0) stack.Push(o);
        return result;
    }
}
