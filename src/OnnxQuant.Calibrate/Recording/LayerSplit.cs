using Onnx;
using OnnxQuant.Awq;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Smoothing;

namespace OnnxQuant.Calibrate.Recording;

/// <summary>
/// One piece of a split graph: its nodes in graph order, what it reads from the graph's inputs and from earlier pieces,
/// and what it must output (the recorded activations it computes and the values later pieces read; a value can be both).
/// </summary>
public sealed record Segment(int Index, IReadOnlyList<NodeProto> Nodes, IReadOnlyList<string> GraphInputs, IReadOnlyList<string> CarriedIn,
    IReadOnlyList<string> Recorded, IReadOnlyList<string> CarriedOut);

/// <summary>A split of the graph into segments, or why it could not be split.</summary>
public sealed record LayerSplitResult(IReadOnlyList<Segment>? Segments, string? Reason)
{
    public bool CanSplit => Segments is { Count: > 1 };
}

/// <summary>
/// Splits the part of the graph calibration needs at the end of each attention and MLP block, so each block can run in a
/// session of its own. The cut points come from the block analysis of AWQ's block loss (<see cref="BlockSubgraph"/>): a
/// block ends at its closing linear (o_proj, down_proj) and the residual Add after it; that Add's output is the hidden
/// state the next block reads. Every node goes to the first segment whose cut it is an ancestor of, so a node only ever
/// reads values of its own or earlier segments, and a value computed once and read by every block (masks, positions,
/// rotary tables) is carried forward between sessions. Any set of cuts gives the same numbers; the cuts only decide how
/// much each session holds (see docs/architecture.md, "Layer-wise calibration").
/// </summary>
public static class LayerSplit
{
    public static LayerSplitResult Find(OnnxModel model, IReadOnlyCollection<string> recorded)
    {
        var graph = model.Graph;
        if (graph.Nodes.Any(n => n.Attribute.Any(a => a.G is not null || a.Graphs.Count > 0)))
            return new(null, "it has If/Loop/Scan subgraphs");
        var recordedInput = recorded.FirstOrDefault(r => graph.Producer(r) is null);
        if (recordedInput is not null)
            return new(null, $"recorded tensor '{recordedInput}' is not computed by a node");

        var needed = Ancestors(graph, recorded, stopAt: null);
        var order = graph.TopologicalOrder().Where(needed.Contains).ToList();
        var position = new Dictionary<NodeProto, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < order.Count; i++) position[order[i]] = i;
        var cuts = Cuts(graph).Where(c => graph.Producer(c) is { } p && needed.Contains(p))
            .OrderBy(c => position[graph.Producer(c)!]).ToList();
        if (cuts.Count == 0)
            return new(null, "no attention or MLP block was found (the block analysis of AWQ's block loss)");

        // Each node's segment: the first cut it leads to; what leads to no cut (final norm, head) goes last.
        var segmentOf = new Dictionary<NodeProto, int>(ReferenceEqualityComparer.Instance);
        int k = 0;
        foreach (var cut in cuts)
        {
            int before = segmentOf.Count;
            foreach (var node in Ancestors(graph, [cut], stopAt: segmentOf))
                segmentOf[node] = k;
            if (segmentOf.Count > before) k++;
        }
        foreach (var node in order)
            segmentOf.TryAdd(node, k);
        int count = segmentOf.Values.Max() + 1;
        if (count < 2)
            return new(null, "the blocks found do not divide it");
        return new(Build(graph, order, segmentOf, count, recorded), null);
    }

    // The cut after each block: the residual Add that reads the closing linear's output, or that output itself.
    private static IEnumerable<string> Cuts(Graph graph)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var group in SmoothingGroups.Find(graph))
        {
            if (BlockSubgraph.Find(graph, group) is not { } block)
                continue;
            var readers = graph.Consumers(block.Output);
            string cut = readers.Count == 1 && readers[0].IsOnnx("Add") && readers[0].Input.Any(i => i != block.Output && graph.GetConstant(i) is null)
                ? readers[0].Output[0]
                : block.Output;
            if (seen.Add(cut))
                yield return cut;
        }
    }

    private static List<Segment> Build(Graph graph, List<NodeProto> order, Dictionary<NodeProto, int> segmentOf, int count, IReadOnlyCollection<string> recorded)
    {
        var producedIn = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var node in order)
            foreach (var o in node.Output)
                if (o.Length > 0) producedIn[o] = segmentOf[node];
        var nodes = Enumerable.Range(0, count).Select(_ => new List<NodeProto>()).ToArray();
        var graphInputs = Enumerable.Range(0, count).Select(_ => new List<string>()).ToArray();
        var carriedIn = Enumerable.Range(0, count).Select(_ => new List<string>()).ToArray();
        var carriedOut = Enumerable.Range(0, count).Select(_ => new HashSet<string>(StringComparer.Ordinal)).ToArray();
        foreach (var node in order)
        {
            int s = segmentOf[node];
            nodes[s].Add(node);
            foreach (var input in Graph.NodeInputs(node).Distinct())
            {
                if (producedIn.TryGetValue(input, out int from))
                {
                    if (from == s || carriedIn[s].Contains(input)) continue;
                    carriedIn[s].Add(input);
                    carriedOut[from].Add(input);
                }
                else if (graph.IsGraphInput(input) && !graphInputs[s].Contains(input))
                    graphInputs[s].Add(input);
            }
        }
        var recordedIn = Enumerable.Range(0, count).Select(_ => new List<string>()).ToArray();
        foreach (var r in recorded)
            recordedIn[producedIn[r]].Add(r);
        var segments = new List<Segment>();
        for (int s = 0; s < count; s++)
            segments.Add(new Segment(s, nodes[s], graphInputs[s], carriedIn[s], recordedIn[s], carriedOut[s].ToList()));
        return segments;
    }

    // The nodes <paramref name="values"/> depend on, not descending into nodes already in <paramref name="stopAt"/>.
    private static HashSet<NodeProto> Ancestors(Graph graph, IEnumerable<string> values, Dictionary<NodeProto, int>? stopAt)
    {
        var result = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<string>(values);
        var visited = new HashSet<string>(StringComparer.Ordinal);
        while (stack.TryPop(out var value))
        {
            if (!visited.Add(value) || graph.Producer(value) is not { } node || stopAt?.ContainsKey(node) == true || !result.Add(node))
                continue;
            foreach (var input in Graph.NodeInputs(node))
                stack.Push(input);
        }
        return result;
    }
}
