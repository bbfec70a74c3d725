using Onnx;
using OnnxQuant.IR;

namespace OnnxQuant.Passes.W8A8;

/// <summary>Adds constants and nodes under a common name prefix, with unique names (a thin helper over <see cref="Graph"/>).</summary>
internal sealed class GraphEmitter
{
    private readonly Graph _graph;

    public GraphEmitter(Graph graph, long opset)
    {
        _graph = graph;
        Opset = opset;
    }

    public Graph Graph => _graph;

    /// <summary>The default-domain opset the emitted nodes must respect.</summary>
    public long Opset { get; }

    /// <summary>Written into every node emitted from now on (which linears it stands for; see <see cref="Analysis.Provenance"/>).</summary>
    public Analysis.Provenance? Provenance { get; set; }

    public string Floats(string hint, ReadOnlySpan<float> values, long[] shape, TensorProto.Types.DataType type = TensorProto.Types.DataType.Float)
    {
        string name = _graph.UniqueValueName(hint);
        _graph.SetInitializer(Tensor.FromFloats(name, values, shape, type));
        return name;
    }

    public string Scalar(string hint, float value, TensorProto.Types.DataType type = TensorProto.Types.DataType.Float) =>
        Floats(hint, [value], [], type);

    public string Int8s(string hint, ReadOnlySpan<sbyte> values, long[] shape)
    {
        string name = _graph.UniqueValueName(hint);
        _graph.SetInitializer(Tensor.FromInt8s(name, values, shape));
        return name;
    }

    /// <summary>An int8 initializer over the quantizer's own array (no copy of a weight's codes); the array must not change afterwards.</summary>
    public string Int8Array(string hint, sbyte[] values, long[] shape)
    {
        string name = _graph.UniqueValueName(hint);
        _graph.SetInitializer(Tensor.FromInt8Array(name, values, shape));
        return name;
    }

    public string UInt8s(string hint, ReadOnlySpan<byte> values, long[] shape)
    {
        string name = _graph.UniqueValueName(hint);
        _graph.SetInitializer(Tensor.FromUInt8s(name, values, shape));
        return name;
    }

    public string Int64s(string hint, ReadOnlySpan<long> values, long[] shape)
    {
        string name = _graph.UniqueValueName(hint);
        _graph.SetInitializer(Tensor.FromInt64s(name, values, shape));
        return name;
    }

    /// <summary>Adds a one-output node; the output gets a fresh name from <paramref name="outputHint"/> unless <paramref name="output"/> is given.</summary>
    public string Node(string op, string nodeHint, string outputHint, IEnumerable<string> inputs, Action<NodeProto>? attributes = null, string? output = null)
    {
        string result = output ?? _graph.UniqueValueName(outputHint);
        var node = Nodes.Create(op, inputs, [result], _graph.UniqueNodeName(nodeHint));
        if (Provenance is not null)
            node.DocString = Provenance.Format();
        attributes?.Invoke(node);
        _graph.AddNode(node);
        return result;
    }

    /// <summary>Gives the freshly emitted <paramref name="value"/> (not read by anything yet) the name <paramref name="name"/>.</summary>
    public string Rename(string value, string name)
    {
        var node = _graph.Producer(value) ?? throw new InvalidOperationException($"nothing produces '{value}'");
        _graph.RenameOutput(node, node.Output.IndexOf(value), name);
        return name;
    }

    public string Cast(string value, TensorProto.Types.DataType to, string hint, string? output = null) =>
        Node("Cast", $"{hint}/Cast", $"{hint}_cast", [value], n => n.With("to", (long)to), output);
}
