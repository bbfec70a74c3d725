using Onnx;
using OnnxQuant.IO;
using OnnxQuant.IR;
using Tensor = OnnxQuant.IR.Tensor;

namespace OnnxQuant.Tests.Analysis;

/// <summary>A small hand-built graph for analysis tests: float inputs, deterministic constants, nodes by name.</summary>
internal sealed class GraphSketch
{
    private readonly List<NodeProto> _nodes = new();
    private readonly List<ValueInfoProto> _inputs = new();
    private readonly List<ValueInfoProto> _outputs = new();
    private readonly List<Tensor> _initializers = new();
    private int _seed = 1;

    public static ValueInfoProto Value(string name, TensorProto.Types.DataType type, params object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is string s ? new TensorShapeProto.Types.Dimension { DimParam = s } : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d) });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }

    public string Input(string name, params object[] dims)
    {
        _inputs.Add(Value(name, TensorProto.Types.DataType.Float, dims));
        return name;
    }

    public void Output(string name, params object[] dims) => _outputs.Add(Value(name, TensorProto.Types.DataType.Float, dims));

    /// <summary>A [rows, cols] initializer with distinct deterministic values.</summary>
    public string Matrix(string name, int rows, int cols, TensorProto.Types.DataType type = TensorProto.Types.DataType.Float)
    {
        _initializers.Add(Tensor.FromFloats(name, RandomValues(rows * cols), [rows, cols], type));
        return name;
    }

    public string Vector(string name, int n)
    {
        _initializers.Add(Tensor.FromFloats(name, RandomValues(n), [n]));
        return name;
    }

    public string Scalar(string name, float value)
    {
        _initializers.Add(Tensor.FromFloats(name, [value], []));
        return name;
    }

    public void Add(Tensor tensor) => _initializers.Add(tensor);

    public NodeProto Node(string op, string[] inputs, string[] outputs, string name, string domain = "")
    {
        var node = Nodes.Create(op, inputs, outputs, name, domain);
        _nodes.Add(node);
        return node;
    }

    /// <summary>One-output node named after its output.</summary>
    public string Op(string op, string output, params string[] inputs)
    {
        Node(op, inputs, [output], output);
        return output;
    }

    public float[] RandomValues(int count)
    {
        var random = new Random(_seed++);
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)(random.NextDouble() * 2 - 1);
        return values;
    }

    public Graph Build()
    {
        var graph = new Graph("sketch", _nodes, _inputs, _outputs, _initializers);
        GraphValidator.Validate(graph, "test sketch");
        return graph;
    }

    public ModelProto ToModel(long opset = 17, params (string Domain, long Version)[] extra)
    {
        var g = new GraphProto { Name = "sketch" };
        g.Node.AddRange(_nodes.Select(n => n.Clone()));
        g.Input.AddRange(_inputs);
        g.Output.AddRange(_outputs);
        g.Initializer.AddRange(_initializers.Select(TensorProtoWriter.Inline));
        var model = new ModelProto { IrVersion = 8, ProducerName = "tests", Graph = g };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        foreach (var (d, v) in extra)
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = d, Version = v });
        return model;
    }

    // ---- norm patterns as exporters write them ----

    /// <summary>ReduceMean, Sub, Pow, ReduceMean, Add(eps), Sqrt, Div, Mul(gamma), Add(beta) — the torch.onnx LayerNorm.</summary>
    public (string Output, string Gamma, string Beta) DecomposedLayerNorm(string x, string prefix, int channels)
    {
        string mean = Op("ReduceMean", $"{prefix}/mean", x);
        Last.With("axes", new long[] { -1 });
        string centred = Op("Sub", $"{prefix}/centred", x, mean);
        string sq = Op("Pow", $"{prefix}/sq", centred, Scalar($"{prefix}/two", 2f));
        string var = Op("ReduceMean", $"{prefix}/var", sq);
        Last.With("axes", new long[] { -1 });
        string plus = Op("Add", $"{prefix}/var_eps", var, Scalar($"{prefix}/eps", 1e-12f));
        string std = Op("Sqrt", $"{prefix}/std", plus);
        string normalized = Op("Div", $"{prefix}/normalized", centred, std);
        string gamma = Vector($"{prefix}.weight", channels);
        string scaled = Op("Mul", $"{prefix}/scaled", normalized, gamma);
        string beta = Vector($"{prefix}.bias", channels);
        string output = Op("Add", $"{prefix}/output", scaled, beta);
        return (output, gamma, beta);
    }

    /// <summary>The Llama RMSNorm export: Cast, Pow, ReduceMean, Add(eps), Sqrt, then 1/x as Reciprocal or Div(1, .), or Div(x, .) directly, Mul, Cast, Mul(gamma).</summary>
    public (string Output, string Gamma) DecomposedRmsNorm(string x, string prefix, int channels, string inverse)
    {
        string wide = Op("Cast", $"{prefix}/to_fp32", x);
        Last.With("to", (long)TensorProto.Types.DataType.Float);
        string sq = Op("Pow", $"{prefix}/sq", wide, Scalar($"{prefix}/two", 2f));
        string ms = Op("ReduceMean", $"{prefix}/ms", sq);
        Last.With("axes", new long[] { -1 });
        string plus = Op("Add", $"{prefix}/ms_eps", ms, Scalar($"{prefix}/eps", 1e-6f));
        string rms = Op("Sqrt", $"{prefix}/rms", plus);
        string normalized = inverse switch
        {
            "Reciprocal" => Op("Mul", $"{prefix}/normalized", wide, Op("Reciprocal", $"{prefix}/inv", rms)),
            "DivOne" => Op("Mul", $"{prefix}/normalized", Op("Div", $"{prefix}/inv", Scalar($"{prefix}/one", 1f), rms), wide),
            "Div" => Op("Div", $"{prefix}/normalized", wide, rms),
            _ => throw new ArgumentException(inverse),
        };
        string narrow = Op("Cast", $"{prefix}/to_input", normalized);
        Last.With("to", (long)TensorProto.Types.DataType.Float);
        string gamma = Vector($"{prefix}.weight", channels);
        return (Op("Mul", $"{prefix}/output", gamma, narrow), gamma);
    }

    /// <summary>The node added last (to add attributes).</summary>
    public NodeProto Last => _nodes[^1];
}
