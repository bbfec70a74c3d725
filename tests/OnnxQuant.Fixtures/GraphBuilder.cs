using Onnx;
using OnnxQuant.IO;
using OnnxQuant.IR;
using DataType = Onnx.TensorProto.Types.DataType;

namespace OnnxQuant.Fixtures;

/// <summary>
/// Appends nodes, initializers, inputs and outputs to a graph under construction, with unique names and known element
/// types. fp16 graphs need no Casts for ORT's CPU provider: probed on ORT 1.31, every op used here either has an fp16
/// CPU kernel or is wrapped in Casts by ORT itself at session load (its cast-insertion transformer runs at every
/// optimisation level), so the fixtures only add the Casts real exporters write (fp32 RMSNorm statistics).
/// </summary>
public sealed class GraphBuilder
{
    private readonly List<NodeProto> _nodes = new();
    private readonly List<Tensor> _initializers = new();
    private readonly List<ValueInfoProto> _inputs = new();
    private readonly List<ValueInfoProto> _outputs = new();
    private readonly Dictionary<string, DataType> _types = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _producers = new(StringComparer.Ordinal);
    private readonly HashSet<string> _nodeNames = new(StringComparer.Ordinal);
    private bool _usesMicrosoftDomain;

    public GraphBuilder(bool fp16) => FloatType = fp16 ? DataType.Float16 : DataType.Float;

    /// <summary>The element type of weights and activations: fp32, or fp16 for an fp16 fixture.</summary>
    public DataType FloatType { get; }

    public bool IsFp16 => FloatType == DataType.Float16;

    public DataType TypeOf(string value) =>
        _types.TryGetValue(value, out var t) ? t : throw new InvalidOperationException($"fixture graph: unknown value '{value}'");

    /// <summary>The name of the node that outputs <paramref name="value"/>.</summary>
    public string ProducerOf(string value) =>
        _producers.TryGetValue(value, out var n) ? n : throw new InvalidOperationException($"fixture graph: no node outputs '{value}'");

    // ---- graph inputs, outputs and initializers ----

    /// <summary>A graph input; <paramref name="dims"/> are symbolic names (string) or sizes (int / long).</summary>
    public string Input(string name, DataType type, params object[] dims)
    {
        _inputs.Add(ValueInfo(name, type, dims));
        _types.Add(name, type);
        return name;
    }

    public void Output(string name, params object[] dims) => _outputs.Add(ValueInfo(name, TypeOf(name), dims));

    /// <summary>A float initializer stored in <see cref="FloatType"/> (or fp32 when <paramref name="fp32"/> is set).</summary>
    public string Weight(string name, float[] values, long[] shape, bool fp32 = false)
    {
        var type = fp32 ? DataType.Float : FloatType;
        return AddInitializer(Tensor.FromFloats(name, values, shape, type));
    }

    /// <summary>A float scalar (shape []) in <see cref="FloatType"/> or fp32.</summary>
    public string Scalar(string name, float value, bool fp32 = false) => Weight(name, new[] { value }, Array.Empty<long>(), fp32);

    public string Int64s(string name, long[] values, long[]? shape = null) =>
        AddInitializer(Tensor.FromInt64s(name, values, shape ?? new long[] { values.Length }));

    public string Int64Scalar(string name, long value) => AddInitializer(Tensor.FromInt64s(name, new[] { value }, Array.Empty<long>()));

    // Constants get derived names (torch numbers its onnx::* and Constant names the same way), so callers may reuse hints.
    private string AddInitializer(Tensor tensor)
    {
        string name = tensor.Name;
        for (int i = 1; _types.ContainsKey(name); i++)
            name = $"{tensor.Name}_{i}";
        if (name != tensor.Name)
            tensor = tensor.Renamed(name);
        _initializers.Add(tensor);
        _types.Add(tensor.Name, tensor.DataType);
        return tensor.Name;
    }

    // ---- nodes ----

    /// <summary>
    /// Adds node <paramref name="name"/> (made unique) and returns its outputs, named <c>{name}_output_{i}</c> as torch
    /// does. Their type is <paramref name="outputType"/>, else that of the first float input. Output positions in
    /// <paramref name="skipOutputs"/> are left unnamed (omitted optional outputs); <paramref name="outputNames"/> names
    /// outputs explicitly (graph outputs such as <c>logits</c>).
    /// </summary>
    public string[] Op(string opType, string name, IReadOnlyList<string> inputs, int outputs = 1, string domain = "",
        Action<NodeProto>? attributes = null, DataType? outputType = null, ISet<int>? skipOutputs = null, string[]? outputNames = null)
    {
        var type = outputType ?? inputs.Where(i => i.Length > 0).Select(TypeOf).FirstOrDefault(ElementType.IsFloat, DataType.Undefined);
        if (type == DataType.Undefined)
            throw new InvalidOperationException($"fixture graph: output type of {opType} '{name}' must be given");
        foreach (var i in inputs)
            if (i.Length > 0) TypeOf(i);
        string nodeName = UniqueNodeName(name);
        var outNames = Enumerable.Range(0, outputs)
            .Select(i => skipOutputs?.Contains(i) == true ? "" : outputNames?[i] ?? $"{nodeName}_output_{i}").ToArray();
        var node = Nodes.Create(opType, inputs, outNames, nodeName, domain);
        attributes?.Invoke(node);
        _nodes.Add(node);
        if (domain == Nodes.MicrosoftDomain) _usesMicrosoftDomain = true;
        foreach (var o in outNames)
        {
            if (o.Length == 0) continue;
            _types.Add(o, type);
            _producers.Add(o, nodeName);
        }
        return outNames;
    }

    /// <summary>A single-output op (see <see cref="Op"/>).</summary>
    public string Op1(string opType, string name, params string[] inputs) => Op(opType, name, inputs)[0];

    public string Cast(string value, DataType to, string name) =>
        Op("Cast", name, new[] { value }, attributes: n => n.With("to", (long)to), outputType: to)[0];

    /// <summary>The value in <see cref="FloatType"/> (a Cast when it is fp32 in an fp16 graph).</summary>
    public string ToFloatType(string value, string name) => TypeOf(value) == FloatType ? value : Cast(value, FloatType, name);

    /// <summary>The value in fp32 (a Cast when it is not).</summary>
    public string ToFp32(string value, string name) => TypeOf(value) == DataType.Float ? value : Cast(value, DataType.Float, name);

    private string UniqueNodeName(string hint)
    {
        if (_nodeNames.Add(hint)) return hint;
        for (int i = 1; ; i++)
            if (_nodeNames.Add($"{hint}_{i}")) return $"{hint}_{i}";
    }

    // ---- result ----

    public ModelProto ToModelProto(string graphName, string docString)
    {
        var graph = new GraphProto { Name = graphName, DocString = docString };
        graph.Node.AddRange(_nodes);
        graph.Input.AddRange(_inputs);
        graph.Output.AddRange(_outputs);
        graph.Initializer.AddRange(_initializers.Select(TensorProtoWriter.Inline));
        var model = new ModelProto
        {
            IrVersion = 8, ProducerName = "OnnxQuant.Fixtures", ProducerVersion = "1", Graph = graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        if (_usesMicrosoftDomain)
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = Nodes.MicrosoftDomain, Version = 1 });
        return model;
    }

    private static ValueInfoProto ValueInfo(string name, DataType type, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d switch
            {
                string s => new TensorShapeProto.Types.Dimension { DimParam = s },
                int i => new TensorShapeProto.Types.Dimension { DimValue = i },
                long l => new TensorShapeProto.Types.Dimension { DimValue = l },
                _ => throw new ArgumentException($"dimension {d} of '{name}' is neither a name nor a size"),
            });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }
}
