using System.Numerics.Tensors;
using Tensor = OnnxQuant.IR.Tensor;
using Onnx;
using OnnxQuant.IO;
using OnnxQuant.IR;

namespace OnnxQuant.Analysis;

/// <summary>
/// What changed between two models: nodes matched by name (added, removed, rewritten = same name but another op,
/// inputs, outputs or attributes), initializers matched by name (added, removed, changed dtype/shape/bytes), graph
/// inputs/outputs, opsets, and sizes on disk. Plain data; `onnxquant diff` prints it or serializes it as is.
/// </summary>
public sealed record ModelDiff(
    ModelFiles Before,
    ModelFiles After,
    int NodesBefore,
    int NodesAfter,
    IReadOnlyList<OpsetChange> Opsets,
    IReadOnlyList<NodeChange> NodesAdded,
    IReadOnlyList<NodeChange> NodesRemoved,
    IReadOnlyList<NodeChange> NodesRewritten,
    IReadOnlyList<InitializerChange> InitializersAdded,
    IReadOnlyList<InitializerChange> InitializersRemoved,
    IReadOnlyList<InitializerChange> InitializersChanged,
    IReadOnlyList<GraphValueChange> GraphValues)
{
    /// <summary>True when nothing but the file names differs.</summary>
    public bool IsEmpty =>
        Opsets.Count == 0 && NodesAdded.Count == 0 && NodesRemoved.Count == 0 && NodesRewritten.Count == 0
        && InitializersAdded.Count == 0 && InitializersRemoved.Count == 0 && InitializersChanged.Count == 0 && GraphValues.Count == 0;

    public static ModelDiff Compare(OnnxModel before, OnnxModel after)
    {
        var (added, removed, rewritten) = CompareNodes(before.Graph, after.Graph);
        var (initAdded, initRemoved, initChanged) = CompareInitializers(before.Graph, after.Graph);
        return new ModelDiff(ModelFiles.Of(before), ModelFiles.Of(after), before.Graph.Nodes.Count, after.Graph.Nodes.Count,
            CompareOpsets(before, after), added, removed, rewritten, initAdded, initRemoved, initChanged,
            CompareGraphValues(before.Graph, after.Graph));
    }

    private static List<OpsetChange> CompareOpsets(OnnxModel before, OnnxModel after)
    {
        var domains = before.Header.OpsetImport.Concat(after.Header.OpsetImport)
            .Select(o => o.Domain is "ai.onnx" ? "" : o.Domain).Distinct().OrderBy(d => d, StringComparer.Ordinal);
        var changes = new List<OpsetChange>();
        foreach (var d in domains)
        {
            long? b = before.OpsetVersion(d), a = after.OpsetVersion(d);
            if (b != a)
                changes.Add(new OpsetChange(d.Length == 0 ? "ai.onnx" : d, b, a));
        }
        return changes;
    }

    private static (List<NodeChange>, List<NodeChange>, List<NodeChange>) CompareNodes(Graph before, Graph after)
    {
        var b = KeyedNodes(before);
        var a = KeyedNodes(after);
        var added = a.Where(kv => !b.ContainsKey(kv.Key)).Select(kv => NodeChange.Of(kv.Key, kv.Value, null)).ToList();
        var removed = b.Where(kv => !a.ContainsKey(kv.Key)).Select(kv => NodeChange.Of(kv.Key, kv.Value, null)).ToList();
        var rewritten = new List<NodeChange>();
        foreach (var (key, old) in b)
            if (a.TryGetValue(key, out var now) && NodeDifferences(old, now) is { Count: > 0 } what)
                rewritten.Add(NodeChange.Of(key, now, old) with { Changed = what });
        return (added, removed, rewritten);
    }

    // Nodes by name; unnamed nodes by their first output (stable across most rewrites); repeated names get "#2", "#3".
    private static Dictionary<string, NodeProto> KeyedNodes(Graph graph)
    {
        var result = new Dictionary<string, NodeProto>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
        {
            string key = node.Name.Length > 0 ? node.Name : $"<unnamed {node.OpType} -> {node.Output.FirstOrDefault() ?? "?"}>";
            string unique = key;
            for (int i = 2; result.ContainsKey(unique); i++)
                unique = $"{key}#{i}";
            result[unique] = node;
        }
        return result;
    }

    private static List<string> NodeDifferences(NodeProto old, NodeProto now)
    {
        var what = new List<string>();
        if (old.OpType != now.OpType || Normalize(old.Domain) != Normalize(now.Domain)) what.Add("op");
        if (!old.Input.SequenceEqual(now.Input)) what.Add("inputs");
        if (!old.Output.SequenceEqual(now.Output)) what.Add("outputs");
        var oa = old.Attribute.OrderBy(x => x.Name, StringComparer.Ordinal).ToList();
        var na = now.Attribute.OrderBy(x => x.Name, StringComparer.Ordinal).ToList();
        if (!oa.SequenceEqual(na)) what.Add("attributes");
        return what;
    }

    private static string Normalize(string domain) => domain == "ai.onnx" ? "" : domain;

    private static (List<InitializerChange>, List<InitializerChange>, List<InitializerChange>) CompareInitializers(Graph before, Graph after)
    {
        var b = before.Initializers;
        var a = after.Initializers;
        var added = a.Values.Where(t => !b.ContainsKey(t.Name)).OrderBy(t => t.Name, StringComparer.Ordinal)
            .Select(t => new InitializerChange(t.Name, null, TensorInfo.Of(t), null)).ToList();
        var removed = b.Values.Where(t => !a.ContainsKey(t.Name)).OrderBy(t => t.Name, StringComparer.Ordinal)
            .Select(t => new InitializerChange(t.Name, TensorInfo.Of(t), null, null)).ToList();
        var common = b.Values.Where(t => a.ContainsKey(t.Name)).OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        var changed = new InitializerChange?[common.Count];
        // Comparing bytes is memory-bound; a few threads help on big models, each tensor compared once.
        Parallel.For(0, common.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Min(4, Environment.ProcessorCount) },
            i => changed[i] = CompareTensor(common[i], a[common[i].Name]));
        return (added, removed, changed.OfType<InitializerChange>().ToList());
    }

    private static InitializerChange? CompareTensor(Tensor old, Tensor now)
    {
        bool sameHeader = old.DataType == now.DataType && old.Shape.SequenceEqual(now.Shape) && old.ByteLength == now.ByteLength;
        if (sameHeader && SameContent(old, now))
            return null;
        double? maxDelta = sameHeader && ElementType.IsFloat(old.DataType) ? MaxAbsDifference(old, now) : null;
        return new InitializerChange(old.Name, TensorInfo.Of(old), TensorInfo.Of(now), maxDelta);
    }

    private static bool SameContent(Tensor old, Tensor now)
    {
        if (old.StringProto is not null || now.StringProto is not null)
            return old.StringProto is not null && now.StringProto is not null && old.StringProto.StringData.SequenceEqual(now.StringProto.StringData);
        return old.RawBytes.SequenceEqual(now.RawBytes);
    }

    private static double MaxAbsDifference(Tensor old, Tensor now)
    {
        var x = old.ToFloats();
        var y = now.ToFloats();
        TensorPrimitives.Subtract(x, y, x);
        return x.Length == 0 ? 0 : Math.Abs(TensorPrimitives.MaxMagnitude(x));
    }

    private static List<GraphValueChange> CompareGraphValues(Graph before, Graph after)
    {
        var changes = new List<GraphValueChange>();
        Compare("input", Real(before, before.Inputs), Real(after, after.Inputs), changes);
        Compare("output", before.Outputs, after.Outputs, changes);
        return changes;

        static IEnumerable<ValueInfoProto> Real(Graph g, IEnumerable<ValueInfoProto> values) => values.Where(v => !g.Initializers.ContainsKey(v.Name));

        static void Compare(string kind, IEnumerable<ValueInfoProto> b, IEnumerable<ValueInfoProto> a, List<GraphValueChange> changes)
        {
            var bs = b.Select(ValueSummary.Of).ToList();
            var @as = a.Select(ValueSummary.Of).ToList();
            foreach (var v in bs)
            {
                var now = @as.FirstOrDefault(x => x.Name == v.Name);
                if (now is null)
                    changes.Add(new GraphValueChange(kind, v.Name, v, null));
                else if (now.Dtype != v.Dtype || now.ShapeText != v.ShapeText)
                    changes.Add(new GraphValueChange(kind, v.Name, v, now));
            }
            foreach (var v in @as.Where(x => bs.All(o => o.Name != x.Name)))
                changes.Add(new GraphValueChange(kind, v.Name, null, v));
        }
    }
}

/// <summary>A domain whose imported opset version differs; null means not imported.</summary>
public sealed record OpsetChange(string Domain, long? Before, long? After);

/// <summary>
/// An added, removed or rewritten node. <see cref="Op"/> is the op now (or before, for a removed node);
/// for a rewritten node <see cref="OpBefore"/> is the old op and <see cref="Changed"/> lists "op", "inputs", "outputs", "attributes".
/// </summary>
public sealed record NodeChange(string Name, string Op, string? OpBefore, IReadOnlyList<string> Changed)
{
    internal static NodeChange Of(string key, NodeProto node, NodeProto? old) =>
        new(key, ModelSummary.OpName(node), old is null ? null : ModelSummary.OpName(old), Array.Empty<string>());
}

public sealed record TensorInfo(string Dtype, IReadOnlyList<long> Shape, long Bytes)
{
    public static TensorInfo Of(Tensor t) => new(ElementType.Name(t.DataType), t.Shape.ToArray(), t.ByteLength);

    [System.Text.Json.Serialization.JsonIgnore]
    public string ShapeText => $"[{string.Join(", ", Shape)}]";
}

/// <summary>
/// An initializer that appeared (Before null), disappeared (After null) or changed. <see cref="MaxAbsDifference"/> is set
/// when only the values changed, for float tensors: the largest |before - after|.
/// </summary>
public sealed record InitializerChange(string Name, TensorInfo? Before, TensorInfo? After, double? MaxAbsDifference);

/// <summary>A graph input or output that appeared, disappeared, or changed dtype or shape.</summary>
public sealed record GraphValueChange(string Kind, string Name, ValueSummary? Before, ValueSummary? After);
