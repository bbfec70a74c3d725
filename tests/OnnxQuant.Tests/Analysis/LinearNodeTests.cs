using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.IR;

namespace OnnxQuant.Tests.Analysis;

public class LinearNodeTests
{
    private const TensorProto.Types.DataType F32 = TensorProto.Types.DataType.Float;
    private const TensorProto.Types.DataType F16 = TensorProto.Types.DataType.Float16;

    [Fact]
    public void MatMulWithConstantWeightIsLinearWithLogicalKN()
    {
        var s = new GraphSketch();
        s.Input("x", "batch", 5);
        s.Node("MatMul", ["x", s.Matrix("w", 5, 3)], ["y"], "proj");
        s.Output("y");
        var graph = s.Build();

        var linear = Assert.Single(LinearNode.FindAll(graph));
        Assert.Equal(("proj", "MatMul", "x", "w", 5, 3), (linear.Name, linear.OpType, linear.Activation, linear.WeightName, linear.K, linear.N));
        Assert.Null(linear.Bias);
        Assert.Equal("y", linear.Output);
        Assert.Equal(graph.GetInitializer("w")!.ToFloats(), linear.ReadWeightKN(graph));
    }

    [Fact]
    public void MatMulOfTwoComputedValuesIsNotLinear()
    {
        // Attention: q · kᵀ where both come from linears; only the two projections count.
        var s = new GraphSketch();
        s.Input("x", 4, 6);
        s.Node("MatMul", ["x", s.Matrix("wq", 6, 6)], ["q"], "q_proj");
        s.Node("MatMul", ["x", s.Matrix("wk", 6, 6)], ["k"], "k_proj");
        s.Node("Transpose", ["k"], ["kt"], "t");
        s.Node("MatMul", ["q", "kt"], ["scores"], "qk");
        s.Output("scores");

        var names = LinearNode.FindAll(s.Build()).Select(l => l.Name);
        Assert.Equal(["q_proj", "k_proj"], names);
    }

    [Fact]
    public void MatMulBiasIsTheOnlyConsumingAddOfAConstantVector()
    {
        var s = new GraphSketch();
        s.Input("x", 2, 4);
        s.Node("MatMul", ["x", s.Matrix("w", 4, 3)], ["mm"], "with_bias");
        s.Node("Add", [s.Vector("b", 3), "mm"], ["y"], "bias_add"); // bias first, as torch exports it
        s.Node("MatMul", ["y", s.Matrix("w2", 3, 3)], ["mm2"], "shared_output");
        s.Node("Add", ["mm2", s.Vector("b2", 3)], ["z"], "add2");
        s.Node("Relu", ["mm2"], ["r"], "relu"); // mm2 has a second reader: the Add is not its bias
        s.Output("z");
        s.Output("r");
        var graph = s.Build();

        var linears = LinearNode.FindAll(graph);
        Assert.Equal(2, linears.Count);
        Assert.Equal("b", linears[0].Bias!.Name);
        Assert.Equal("bias_add", linears[0].Bias!.AddNode!.Name);
        Assert.Equal("y", linears[0].Output);
        Assert.Equal(graph.GetInitializer("b")!.ToFloats(), linears[0].ReadBias(graph));
        Assert.Null(linears[1].Bias);
        Assert.Equal("mm2", linears[1].Output);
    }

    [Fact]
    public void GemmTransBIsReadAsKNAndWrittenBackAsNK()
    {
        // 320 x 300 takes the multi-threaded transpose path.
        const int K = 300, N = 320;
        var s = new GraphSketch();
        s.Input("x", 1, K);
        s.Node("Gemm", ["x", s.Matrix("w", N, K), s.Vector("c", N)], ["y"], "fc").With("transB", 1L);
        s.Output("y");
        var graph = s.Build();

        var linear = Assert.Single(LinearNode.FindAll(graph));
        Assert.Equal((K, N, true), (linear.K, linear.N, linear.IsTransposed));
        var stored = graph.GetInitializer("w")!.ToFloats();
        var kn = linear.ReadWeightKN(graph);
        foreach (var (k, n) in new[] { (0, 0), (0, N - 1), (K - 1, 0), (123, 217), (K - 1, N - 1) })
            Assert.Equal(stored[n * K + k], kn[k * N + n]);

        var written = linear.MakeWeight(kn);
        Assert.Equal([N, K], written.Shape);
        Assert.Equal(graph.GetInitializer("w")!.RawBytes.ToArray(), written.RawBytes.ToArray());
        Assert.Equal("c", linear.Bias!.Name);
        Assert.Null(linear.Bias.AddNode);
    }

    [Fact]
    public void GemmAlphaIsFoldedIntoTheWeightAndBetaIntoTheBias()
    {
        var s = new GraphSketch();
        s.Input("x", 1, 4);
        s.Node("Gemm", ["x", s.Matrix("w", 4, 2), s.Vector("c", 2)], ["y"], "fc").With("alpha", 0.5f).With("beta", 3f);
        s.Output("y");
        var graph = s.Build();

        var linear = Assert.Single(LinearNode.FindAll(graph));
        var stored = graph.GetInitializer("w")!.ToFloats();
        var kn = linear.ReadWeightKN(graph);
        Assert.Equal(stored.Select(v => v * 0.5f), kn);
        Assert.Equal(graph.GetInitializer("c")!.ToFloats().Select(v => v * 3f), linear.ReadBias(graph)!);

        // Writing the effective weight back restores the stored one: the node still computes X · kn.
        Assert.Equal(stored, linear.MakeWeight(kn).ToFloats());
    }

    [Theory]
    [InlineData("transA", 1L)]
    [InlineData("per-row C", 0L)]
    public void GemmThatIsNotAPlainLinearIsRefused(string variant, long transA)
    {
        var s = new GraphSketch();
        s.Input("x", 4, 4);
        s.Input("rows", 4, 4);
        string c = variant == "per-row C" ? "rows" : s.Vector("c", 4);
        s.Node("Gemm", ["x", s.Matrix("w", 4, 4), c], ["y"], "fc").With("transA", transA);
        s.Output("y");

        Assert.Empty(LinearNode.FindAll(s.Build()));
    }

    [Fact]
    public void Fp16WeightKeepsItsStorageType()
    {
        var s = new GraphSketch();
        s.Input("x", 1, 8);
        s.Node("MatMul", ["x", s.Matrix("w", 8, 4, F16)], ["y"], "half");
        s.Output("y");
        var graph = s.Build();

        var linear = Assert.Single(LinearNode.FindAll(graph));
        Assert.Equal(F16, linear.WeightType);
        var kn = linear.ReadWeightKN(graph);
        Assert.Equal(32, kn.Length);
        Assert.All(kn, v => Assert.Equal((float)(Half)v, v)); // exactly representable: read from fp16

        var doubled = kn.Select(v => v * 2).ToArray();
        var written = linear.MakeWeight(doubled, "w_scaled");
        Assert.Equal(("w_scaled", F16, 64L), (written.Name, written.DataType, written.ByteLength));
        Assert.Equal(doubled, written.ToFloats());
    }

    [Fact]
    public void WeightFromAConstantNodeIsConstant()
    {
        var s = new GraphSketch();
        s.Input("x", 1, 2);
        var value = OnnxQuant.IO.TensorProtoWriter.Inline(Tensor.FromFloats("cw", [1, 2, 3, 4, 5, 6], [2, 3], F32));
        s.Node("Constant", [], ["cw"], "const_w").With("value", value);
        s.Node("MatMul", ["x", "cw"], ["y"], "mm");
        s.Output("y");
        var graph = s.Build();

        var linear = Assert.Single(LinearNode.FindAll(graph));
        Assert.True(linear.WeightIsConstantNode);
        Assert.Equal((2, 3), (linear.K, linear.N));
        Assert.Equal([1f, 2, 3, 4, 5, 6], linear.ReadWeightKN(graph));
    }

    [Fact]
    public void MakeWeightRejectsAWrongSize()
    {
        var s = new GraphSketch();
        s.Input("x", 1, 2);
        s.Node("MatMul", ["x", s.Matrix("w", 2, 3)], ["y"], "mm");
        s.Output("y");
        var linear = Assert.Single(LinearNode.FindAll(s.Build()));

        Assert.Throws<ArgumentException>(() => linear.MakeWeight(new float[5]));
    }
}
