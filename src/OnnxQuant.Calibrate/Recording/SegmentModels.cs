using Onnx;
using OnnxQuant.IO;

namespace OnnxQuant.Calibrate.Recording;

/// <summary>
/// The ONNX models of a split graph's segments. Each holds only the initializers its own nodes read, so a session over it
/// loads one block's weights; weights still mapped from external data stay references into the original folder.
/// </summary>
public sealed class SegmentModels
{
    private readonly ModelProto _proto;
    private readonly Dictionary<string, TensorProto> _initializers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ValueInfoProto> _valueInfo = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ValueInfoProto> _inputs = new(StringComparer.Ordinal);

    public SegmentModels(OnnxModel model)
    {
        _proto = SessionProto.Build(model, out var folder);
        ExternalDataFolder = folder;
        foreach (var t in _proto.Graph.Initializer) _initializers[t.Name] = t;
        foreach (var v in _proto.Graph.ValueInfo.Concat(_proto.Graph.Output)) _valueInfo.TryAdd(v.Name, v);
        foreach (var v in _proto.Graph.Input) _inputs[v.Name] = v;
    }

    public string? ExternalDataFolder { get; }

    /// <summary>The names a segment's session outputs: its recorded tensors, then the carried values not among them.</summary>
    public static List<string> Outputs(Segment segment) => segment.Recorded.Concat(segment.CarriedOut).Distinct().ToList();

    /// <param name="carriedTypes">Element type (ONNX numbering) and rank of each carried-in value, as the earlier segment produced it.</param>
    public byte[] Serialize(Segment segment, IReadOnlyDictionary<string, (int ElementType, int Rank)> carriedTypes)
    {
        var graph = new GraphProto { Name = $"{_proto.Graph.Name} segment {segment.Index}" };
        graph.Node.AddRange(segment.Nodes);
        foreach (var name in segment.GraphInputs)
            graph.Input.Add(_inputs[name]);
        foreach (var name in segment.CarriedIn)
        {
            var (type, rank) = carriedTypes[name];
            graph.Input.Add(Dynamic(name, type, rank));
        }
        var read = new HashSet<string>(segment.Nodes.SelectMany(IR.Graph.NodeInputs), StringComparer.Ordinal);
        // An input that also has an initializer keeps it: ORT treats it as a default and never asks for a feed, as in the whole graph.
        graph.Initializer.AddRange(read.Where(_initializers.ContainsKey).Select(n => _initializers[n]));
        var outputs = Outputs(segment);
        var declared = new HashSet<string>(outputs, StringComparer.Ordinal);
        var produced = new HashSet<string>(segment.Nodes.SelectMany(n => n.Output), StringComparer.Ordinal);
        graph.ValueInfo.AddRange(_proto.Graph.ValueInfo.Where(v => produced.Contains(v.Name) && !declared.Contains(v.Name)));
        foreach (var name in outputs)
            graph.Output.Add(_valueInfo.TryGetValue(name, out var info) ? info : new ValueInfoProto { Name = name });
        return SessionProto.WithGraph(_proto, graph);
    }

    // Every dimension symbolic and distinct: the last batch may be smaller, and sequence-shaped values differ in length.
    private static ValueInfoProto Dynamic(string name, int elementType, int rank)
    {
        var shape = new TensorShapeProto();
        for (int d = 0; d < rank; d++)
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = $"{name}_dim{d}" });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = elementType, Shape = shape } } };
    }
}
