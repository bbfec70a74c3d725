using Onnx;
using OnnxQuant.IR;

namespace OnnxQuant.Smoothing;

/// <summary>
/// When nothing upstream can take s (the activation also feeds a residual Add or a graph output, or its producer is
/// nonlinear), a new <c>Mul(x, 1/s)</c> feeds the group's linears; other readers keep the unscaled value. Always exact,
/// at the cost of one elementwise node (which the W8A8 rewrite absorbs into the activation quantizer).
/// </summary>
public sealed class InsertedMulFold : IFoldTarget
{
    /// <summary>Doc string on every inserted node, so later passes can recognise a smoothing Mul.</summary>
    public const string DocString = "onnxquant: smoothing 1/s";

    private readonly IReadOnlyList<NodeProto> _readers;
    private readonly IReadOnlyList<BodyConsumer> _bodyReaders;

    /// <param name="bodyReaders">The group's linears inside If/Loop/Scan bodies: they read the Mul's output too.</param>
    public InsertedMulFold(string activation, IReadOnlyList<NodeProto> readers, TensorProto.Types.DataType dataType,
        IReadOnlyList<BodyConsumer>? bodyReaders = null)
    {
        Activation = activation;
        _readers = readers;
        _bodyReaders = bodyReaders ?? [];
        DataType = dataType;
    }

    public FoldKind Kind => FoldKind.InsertedMul;

    public string Activation { get; }

    /// <summary>The activation's element type (the 1/s constant is stored in it).</summary>
    public TensorProto.Types.DataType DataType { get; }

    /// <summary>The Mul node after <see cref="Apply"/>, null before.</summary>
    public NodeProto? Inserted { get; private set; }

    public string Description => Inserted is null ? $"new Mul(1/s) on '{Activation}'" : $"{Inserted.Describe()}";

    public bool IsExact(Graph graph) => true;

    public void Apply(Graph graph, ReadOnlySpan<float> scale)
    {
        if (Inserted is not null)
        {
            // A second fold on the same group: the Mul's constant takes the new factor too.
            var s = scale.ToArray();
            ConstantEdits.Rewrite(graph, Inserted, 1, values => System.Numerics.Tensors.TensorPrimitives.Divide(values, s, values));
            return;
        }
        var inverse = new float[scale.Length];
        for (int j = 0; j < inverse.Length; j++)
            inverse[j] = 1f / scale[j];
        string constant = graph.UniqueValueName($"{Activation}_smooth_inv_s");
        graph.SetInitializer(Tensor.FromFloats(constant, inverse, [inverse.Length], DataType));
        string output = graph.UniqueValueName($"{Activation}_smoothed");
        var mul = Nodes.Create("Mul", [Activation, constant], [output], graph.UniqueNodeName($"{Activation}/SmoothMul"));
        mul.DocString = DocString;
        graph.AddNode(mul);
        foreach (var reader in _readers)
            graph.ReplaceInput(reader, Activation, output);
        foreach (var reader in _bodyReaders)
            BodyConsumers.Edit(graph, reader, (body, linear) =>
            {
                body.ReplaceInput(linear.Node, Activation, output);
                return true;
            });
        graph.SortTopologically();
        Inserted = mul;
    }
}
