using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.IR;

namespace OnnxQuant.Smoothing;

/// <summary>
/// Just enough static shape knowledge to read exporters' run-time reshape targets such as
/// <c>Concat(B, S, Gather(Shape(x), 2))</c>: the rank of a value (from declared shapes and simple ops) and its last
/// dimension when a constant-weight linear reads or writes it.
/// </summary>
internal sealed class ShapeHints
{
    private const int MaxDepth = 64;
    private readonly Graph _graph;
    private readonly Dictionary<string, long> _lastDims = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int?> _ranks = new(StringComparer.Ordinal);

    public ShapeHints(Graph graph, IEnumerable<LinearNode> linears)
    {
        _graph = graph;
        foreach (var l in linears)
        {
            _lastDims.TryAdd(l.Activation, l.K);
            _lastDims.TryAdd(l.Node.Output[0], l.N);
            _lastDims.TryAdd(l.Output, l.N);
        }
    }

    /// <summary>The value of a run-time shape entry <c>[Unsqueeze](Gather(Shape(x), i))</c> when it is x's known last dimension.</summary>
    public long? ShapeEntry(string value)
    {
        string gathered = _graph.ProducerIs(value, "Unsqueeze") is { } u ? u.Input[0] : value;
        if (_graph.ProducerIs(gathered, "Gather") is not { } gather || _graph.ProducerIs(gather.Input[0], "Shape") is not { } shape
            || shape.GetInt("start", 0) != 0 || shape.Attribute.Any(a => a.Name == "end"))
            return null;
        if (_graph.GetConstant(gather.Input[1]) is not { ElementCount: 1 } index)
            return null;
        string x = shape.Input[0];
        long i = index.ToInt64s()[0];
        if (!_lastDims.TryGetValue(x, out long last))
            return null;
        bool isLast = i == -1 || Rank(x, 0) is { } rank && i == rank - 1;
        return isLast ? last : null;
    }

    /// <summary>The rank of <paramref name="value"/>, or null when it cannot be told without running the model.</summary>
    public int? Rank(string value, int depth)
    {
        if (_ranks.TryGetValue(value, out var known))
            return known;
        int? rank = depth > MaxDepth ? null : Compute(value, depth);
        _ranks[value] = rank;
        return rank;
    }

    private int? Compute(string value, int depth)
    {
        var declared = _graph.Inputs.Concat(_graph.ValueInfo).Concat(_graph.Outputs).FirstOrDefault(v => v.Name == value);
        if (declared?.Type?.TensorType?.Shape is { } shape)
            return shape.Dim.Count;
        if (_graph.GetConstant(value) is { } constant)
            return constant.Shape.Count;
        if (_graph.Producer(value) is not { } node)
            return null;
        int? Input(int i) => i < node.Input.Count && node.Input[i].Length > 0 ? Rank(node.Input[i], depth + 1) : null;
        switch (node.OpType)
        {
            case "Gather" when node.Domain is "" or "ai.onnx":
                return Input(0) is { } data && Input(1) is { } indices ? data + indices - 1 : null;
            case "Reshape":
                return _graph.GetConstant(node.Input[1]) is { } target ? (int)target.ElementCount
                    : _graph.ProducerIs(node.Input[1], "Concat") is { } concat ? (int)concat.Input.Sum(p => _graph.GetConstant(p)?.ElementCount ?? 1) : null;
            case "Transpose":
                return node.GetInts("perm")?.Count ?? Input(0);
            case "ReduceMean" or "ReduceMax" or "ReduceSum" when node.GetInt("keepdims", 1) == 1:
            case "Cast" or "Sqrt" or "Reciprocal" or "Neg" or "Softmax" or "Erf" or "Tanh" or "Sigmoid" or "Relu" or "Identity":
                return Input(0);
            case "Add" or "Sub" or "Mul" or "Div" or "Pow" or "MatMul" or "Where" or "Max" or "Min":
                int? max = null;
                for (int i = 0; i < node.Input.Count; i++)
                {
                    if (Input(i) is not { } r)
                        return null;
                    max = Math.Max(max ?? 0, r);
                }
                return max;
            default:
                return null;
        }
    }
}
