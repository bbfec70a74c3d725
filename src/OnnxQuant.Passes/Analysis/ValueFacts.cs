using Onnx;
using OnnxQuant.IR;
using DataType = Onnx.TensorProto.Types.DataType;

namespace OnnxQuant.Analysis;

/// <summary>
/// A light forward inference of two facts per value: its element type and the size of its last axis (the channels a
/// linear reads). It knows only the ops whose rule is obvious (elementwise, norms, Cast, Gather, linears); anything
/// else is "unknown", and checks built on it judge only what is known, so an exotic op never causes a false alarm.
/// </summary>
public sealed class ValueFacts
{
    // Ops whose output has the element type of input 0 and, for the elementwise ones, the broadcast last axis.
    private static readonly HashSet<string> Unary = new(StringComparer.Ordinal)
    {
        "Identity", "Relu", "Sigmoid", "Tanh", "Erf", "Sqrt", "Reciprocal", "Neg", "Abs", "Exp", "Log", "Softplus",
        "Gelu", "FastGelu", "QuickGelu", "BiasGelu", "Elu", "LeakyRelu", "HardSigmoid", "Dropout", "Clip", "Softmax", "Floor", "Ceil", "Round",
    };

    private static readonly HashSet<string> Binary = new(StringComparer.Ordinal) { "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min" };

    // Ops that keep input 0's type but may change its shape (so the channel count is not carried over).
    private static readonly HashSet<string> SameTypeOnly = new(StringComparer.Ordinal)
    {
        "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Slice", "Concat", "Split", "Expand", "Tile", "Pad",
        "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "MatMul", "Gemm", "Attention", "MultiHeadAttention",
        "GroupQueryAttention", "RotaryEmbedding", "MatMulNBits",
    };

    private static readonly HashSet<string> Norms = new(StringComparer.Ordinal)
    {
        "LayerNormalization", "SimplifiedLayerNormalization", "SkipLayerNormalization", "SkipSimplifiedLayerNormalization", "RMSNormalization",
    };

    private readonly Dictionary<string, DataType> _types = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _channels = new(StringComparer.Ordinal);

    private ValueFacts()
    {
    }

    public static ValueFacts Infer(Graph graph)
    {
        var facts = new ValueFacts();
        foreach (var v in graph.Inputs.Concat(graph.ValueInfo).Concat(graph.Outputs))
            facts.Declare(v);
        foreach (var t in graph.Initializers.Values)
        {
            facts._types[t.Name] = t.DataType;
            if (t.Shape.Count > 0 && t.Shape[^1] > 1)
                facts._channels[t.Name] = t.Shape[^1];
        }
        foreach (var node in graph.TopologicalOrder())
            facts.Visit(graph, node);
        return facts;
    }

    public DataType? TypeOf(string value) => _types.TryGetValue(value, out var t) ? t : null;

    /// <summary>The size of the value's last axis when it is known to be more than 1.</summary>
    public long? ChannelsOf(string value) => _channels.TryGetValue(value, out var c) ? c : null;

    private void Declare(ValueInfoProto v)
    {
        var tensor = v.Type?.TensorType;
        if (tensor is null)
            return;
        if (tensor.ElemType != 0)
            _types.TryAdd(v.Name, (DataType)tensor.ElemType);
        if (tensor.Shape is { Dim.Count: > 0 } shape && shape.Dim[^1].HasDimValue && shape.Dim[^1].DimValue > 1)
            _channels.TryAdd(v.Name, shape.Dim[^1].DimValue);
    }

    private void Visit(Graph graph, NodeProto node)
    {
        if (node.Output.Count == 0)
            return;
        string output = node.Output[0];
        bool standard = node.Domain is "" or "ai.onnx" or Nodes.MicrosoftDomain;
        if (!standard || _types.ContainsKey(output) && _channels.ContainsKey(output))
            return;
        string op = node.OpType;
        var input0 = node.InputAt(0);
        DataType? type = input0 is null ? null : TypeOf(input0);
        long? channels = null;

        if (op == "Cast")
        {
            type = (DataType)node.GetInt("to", 0);
            channels = input0 is null ? null : ChannelsOf(input0);
        }
        else if (op == "Gather")
        {
            // An embedding lookup (axis 0 of a constant table): whole rows, so the table's last axis carries over.
            if (input0 is not null && node.GetInt("axis", 0) == 0 && graph.GetInitializer(input0) is { Shape.Count: >= 2 })
                channels = ChannelsOf(input0);
        }
        else if (op == "Shape" || op == "Size")
        {
            type = DataType.Int64;
        }
        else if (QuantizedOutputType(node) is { } quantized)
        {
            // The quantization ops' output types follow their zero points or scales (what placement checks read).
            type = quantized;
        }
        else if (Unary.Contains(op))
        {
            channels = input0 is null ? null : ChannelsOf(input0);
        }
        else if (Binary.Contains(op))
        {
            channels = Broadcast(node.Input.Select(ChannelsOf));
            if (op == "Pow")
                channels = input0 is null ? null : ChannelsOf(input0);
        }
        else if (Norms.Contains(op))
        {
            int gamma = op.StartsWith("Skip", StringComparison.Ordinal) ? 2 : 1;
            channels = node.InputAt(gamma) is { } g ? ChannelsOf(g) : null;
        }
        else if (LinearNode.TryCreate(graph, node) is { } linear)
        {
            channels = linear.N;
        }
        else if (!SameTypeOnly.Contains(op))
        {
            type = null; // an op whose output type rule is not known here
        }

        if (type is { } t && t != DataType.Undefined)
            _types.TryAdd(output, t);
        if (channels is > 1)
            _channels.TryAdd(output, channels.Value);
    }

    // Output element types of the quantization ops, or null for any other op (or when the deciding input is unknown).
    private DataType? QuantizedOutputType(NodeProto node)
    {
        DataType? Of(int index) => node.InputAt(index) is { Length: > 0 } v ? TypeOf(v) : null;
        return node.OpType switch
        {
            "QuantizeLinear" => node.InputAt(2) is { Length: > 0 } ? Of(2) : DataType.Uint8,
            "DynamicQuantizeLinear" => DataType.Uint8,
            "MatMulInteger" => DataType.Int32,
            "DequantizeLinear" => Of(1),
            "QLinearMatMul" => Of(7),
            "MatMulIntegerToFloat" => Of(2),
            "DynamicQuantizeMatMul" => Of(0),
            _ => null,
        };
    }

    // Broadcasting over the last axis: the known sizes above 1 must agree, else nothing is claimed.
    private static long? Broadcast(IEnumerable<long?> sizes)
    {
        long? result = null;
        foreach (var s in sizes)
        {
            if (s is not { } size)
                continue;
            if (result is not null && result != size)
                return null;
            result = size;
        }
        return result;
    }
}
