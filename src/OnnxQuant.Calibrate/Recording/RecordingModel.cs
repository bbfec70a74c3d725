using Onnx;
using OnnxQuant.IO;
using OnnxQuant.IR;

namespace OnnxQuant.Calibrate.Recording;

/// <summary>
/// Copies of the model whose only outputs are the activations to record. The model's own outputs (logits, present KV)
/// are dropped and every node they alone needed is pruned, so ONNX Runtime neither computes nor keeps them. Weights are
/// not copied: tensors still mapped from external data stay references into the original folder.
/// </summary>
public sealed class RecordingModel
{
    private readonly ModelProto _proto;
    private readonly Dictionary<string, ValueInfoProto> _valueInfo = new(StringComparer.Ordinal);

    public RecordingModel(OnnxModel model)
    {
        _proto = SessionProto.Build(model, out var folder);
        ExternalDataFolder = folder;
        foreach (var v in _proto.Graph.ValueInfo.Concat(_proto.Graph.Output).Concat(_proto.Graph.Input))
            _valueInfo.TryAdd(v.Name, v);
    }

    /// <summary>The folder ORT must resolve external data in, or null when all weights are inline.</summary>
    public string? ExternalDataFolder { get; }

    /// <summary>The serialised copy that outputs exactly <paramref name="tensors"/>, computing nothing else.</summary>
    public byte[] Serialize(IReadOnlyList<string> tensors)
    {
        var full = _proto.Graph;
        var recorded = new HashSet<string>(tensors, StringComparer.Ordinal);
        var needed = NeededNodes(full, tensors, out var neededValues);
        var graph = new GraphProto { Name = full.Name };
        graph.Node.AddRange(needed);
        graph.Input.AddRange(full.Input);
        graph.Initializer.AddRange(full.Initializer.Where(t => neededValues.Contains(t.Name)));
        graph.ValueInfo.AddRange(full.ValueInfo.Where(v => neededValues.Contains(v.Name) && !recorded.Contains(v.Name)));
        foreach (var name in tensors)
            graph.Output.Add(_valueInfo.TryGetValue(name, out var info) ? info : new ValueInfoProto { Name = name });
        return SessionProto.WithGraph(_proto, graph);
    }

    // Walks back from the recorded tensors; keeps the kept nodes in their original (topological) order.
    private static List<NodeProto> NeededNodes(GraphProto graph, IReadOnlyList<string> outputs, out HashSet<string> neededValues)
    {
        var producer = new Dictionary<string, NodeProto>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
            foreach (var o in node.Output)
                if (o.Length > 0)
                    producer[o] = node;
        neededValues = new HashSet<string>(outputs, StringComparer.Ordinal);
        var keep = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<string>(outputs);
        while (stack.Count > 0)
        {
            var value = stack.Pop();
            if (!producer.TryGetValue(value, out var node) || !keep.Add(node))
                continue;
            foreach (var input in Graph.NodeInputs(node))
                if (neededValues.Add(input))
                    stack.Push(input);
        }
        var missing = outputs.Where(o => !producer.ContainsKey(o) && !graph.Input.Any(i => i.Name == o)).ToList();
        if (missing.Count > 0)
            throw new OnnxQuantException(null, $"cannot record {string.Join(", ", missing.Select(m => $"'{m}'"))}: no node of the model produces it", ExitCode.Unsupported);
        return graph.Node.Where(keep.Contains).ToList();
    }
}
