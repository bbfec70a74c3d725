using OnnxQuant.Analysis;
using OnnxQuant.IR;

namespace OnnxQuant.Tests.Analysis;

public class ActivationProducerTests
{
    private const int C = 8;

    // q, k, v projections reading one activation, as after every norm of a transformer layer.
    private static (Graph Graph, IReadOnlyList<ActivationProducer> Producers) Classify(GraphSketch s, string activation)
    {
        foreach (var p in new[] { "q", "k", "v" })
            s.Node("MatMul", [activation, s.Matrix($"w{p}", C, C)], [$"{p}_out"], $"{p}_proj");
        foreach (var p in new[] { "q", "k", "v" })
            s.Output($"{p}_out");
        var graph = s.Build();
        var linears = LinearNode.FindAll(graph);
        var qkv = linears.Where(l => l.Name is "q_proj" or "k_proj" or "v_proj").ToList();
        Assert.Equal(3, qkv.Count);
        return (graph, qkv.Select(l => ActivationProducer.Of(graph, l, linears)).ToList());
    }

    [Fact]
    public void FusedLayerNormalizationNamesGammaAndBeta()
    {
        var s = new GraphSketch();
        s.Input("x", "batch", "seq", C);
        s.Node("LayerNormalization", ["x", s.Vector("ln.weight", C), s.Vector("ln.bias", C)], ["h"], "ln").With("axis", -1L);
        var (_, producers) = Classify(s, "h");

        Assert.All(producers, p =>
        {
            Assert.Equal(ProducerKind.LayerNorm, p.Kind);
            Assert.Equal(("ln", 0), (p.Node!.Name, p.OutputIndex));
            Assert.Equal(("x", "ln.weight", "ln.bias"), (p.Norm!.Input, p.Norm.Gamma, p.Norm.Beta));
            Assert.Same(p.Node, p.Norm.GammaNode);
        });
    }

    [Theory]
    [InlineData("")]
    [InlineData("com.microsoft")]
    public void SimplifiedLayerNormalizationIsRmsNormInEitherDomain(string domain)
    {
        var s = new GraphSketch();
        s.Input("x", 1, C);
        s.Node("SimplifiedLayerNormalization", ["x", s.Vector("norm.weight", C)], ["h"], "norm", domain);
        var (_, producers) = Classify(s, "h");

        Assert.All(producers, p => Assert.Equal((ProducerKind.RMSNorm, "norm.weight", (string?)null), (p.Kind, p.Norm!.Gamma, p.Norm.Beta)));
    }

    [Fact]
    public void SkipLayerNormalizationOutputZeroIsTheNormAndOutputThreeIsNot()
    {
        var s = new GraphSketch();
        s.Input("x", 1, C);
        s.Input("residual", 1, C);
        s.Node("SkipLayerNormalization", ["x", "residual", s.Vector("g", C), s.Vector("b", C), s.Vector("pre_bias", C)],
            ["h", "", "", "sum"], "skip_ln", "com.microsoft");
        s.Node("MatMul", ["sum", s.Matrix("w_sum", C, C)], ["from_sum"], "reads_residual");
        s.Output("from_sum");
        var (graph, producers) = Classify(s, "h");

        Assert.All(producers, p =>
        {
            Assert.Equal(ProducerKind.SkipLayerNorm, p.Kind);
            Assert.Equal(("x", "residual", "g", "b"), (p.Norm!.Input, p.Norm.Skip, p.Norm.Gamma, p.Norm.Beta));
        });
        var residualReader = LinearNode.FindAll(graph).Single(l => l.Name == "reads_residual");
        var residual = ActivationProducer.Of(graph, residualReader);
        Assert.Equal((ProducerKind.Other, "skip_ln", 3), (residual.Kind, residual.Node!.Name, residual.OutputIndex));
        Assert.Null(residual.Norm);
    }

    [Fact]
    public void SkipSimplifiedLayerNormalizationIsSkipRmsNorm()
    {
        var s = new GraphSketch();
        s.Input("x", 1, C);
        s.Input("residual", 1, C);
        s.Node("SkipSimplifiedLayerNormalization", ["x", "residual", s.Vector("g", C)], ["h", "", "", "sum"], "skip_rms", "com.microsoft");
        var (_, producers) = Classify(s, "h");

        Assert.All(producers, p => Assert.Equal((ProducerKind.SkipRMSNorm, "g", (string?)null, "residual"), (p.Kind, p.Norm!.Gamma, p.Norm.Beta, p.Norm.Skip)));
    }

    [Fact]
    public void DecomposedLayerNormIsMatchedWithItsNodes()
    {
        var s = new GraphSketch();
        s.Input("x", 2, 5, C);
        var (h, gamma, beta) = s.DecomposedLayerNorm("x", "emb.LayerNorm", C);
        var (_, producers) = Classify(s, h);

        Assert.All(producers, p =>
        {
            Assert.Equal(ProducerKind.DecomposedLayerNorm, p.Kind);
            Assert.Equal(("x", gamma, beta), (p.Norm!.Input, p.Norm.Gamma, p.Norm.Beta));
            Assert.Equal(("emb.LayerNorm/scaled", "emb.LayerNorm/output"), (p.Norm.GammaNode.Name, p.Norm.BetaNode!.Name));
            Assert.Equal("emb.LayerNorm/output", p.Node!.Name);
            Assert.Equal(9, p.Norm.Nodes.Count); // ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add
            Assert.Equal(h, p.Norm.Output);
        });
    }

    [Theory]
    [InlineData("Reciprocal")]
    [InlineData("DivOne")]
    [InlineData("Div")]
    public void DecomposedRmsNormIsMatchedThroughCastsAndEachInverseForm(string inverse)
    {
        var s = new GraphSketch();
        s.Input("x", 1, 3, C);
        var (h, gamma) = s.DecomposedRmsNorm("x", "input_layernorm", C, inverse);
        var (_, producers) = Classify(s, h);

        Assert.All(producers, p =>
        {
            Assert.Equal(ProducerKind.DecomposedRMSNorm, p.Kind);
            Assert.Equal(("x", gamma, (string?)null), (p.Norm!.Input, p.Norm.Gamma, p.Norm.Beta));
            Assert.Equal("input_layernorm/output", p.Norm.GammaNode.Name);
            Assert.Null(p.Norm.BetaNode);
        });
    }

    [Fact]
    public void MatMulProducerIsFoundThroughItsBiasAdd()
    {
        var s = new GraphSketch();
        s.Input("x", 1, C);
        s.Node("MatMul", ["x", s.Matrix("w_up", C, C)], ["up_mm"], "up");
        s.Node("Add", [s.Vector("up.bias", C), "up_mm"], ["up_out"], "up_bias");
        var (_, producers) = Classify(s, "up_out");

        Assert.All(producers, p =>
        {
            Assert.Equal((ProducerKind.MatMul, "up_bias", "up"), (p.Kind, p.Node!.Name, p.Linear!.Name));
            Assert.Null(p.Norm);
        });
    }

    [Fact]
    public void MulByANonConstantIsNotANorm()
    {
        // The LayerNorm shape up to the final Mul, but "gamma" is computed at run time.
        var s = new GraphSketch();
        s.Input("x", 1, C);
        s.Input("gate", 1, C);
        var (h, _, _) = s.DecomposedLayerNorm("x", "ln", C);
        s.Node("Mul", [h, "gate"], ["gated"], "gating");
        var (_, producers) = Classify(s, "gated");

        Assert.All(producers, p => Assert.Equal((ProducerKind.Other, "gating"), (p.Kind, p.Node!.Name)));
    }

    [Fact]
    public void RmsPatternFollowedByAnAddIsNotANorm()
    {
        // An Add after an RMSNorm is something else (a residual, a bias); folding into gamma alone would be wrong.
        var s = new GraphSketch();
        s.Input("x", 1, C);
        var (h, _) = s.DecomposedRmsNorm("x", "rms", C, "Reciprocal");
        s.Node("Add", [h, s.Vector("shift", C)], ["shifted"], "shift_add");
        var (_, producers) = Classify(s, "shifted");

        Assert.All(producers, p => Assert.Equal(ProducerKind.Other, p.Kind));
    }

    [Fact]
    public void LayerNormWithoutTheMeanSubtractionIsRmsNotLayerNorm()
    {
        // Pow/ReduceMean/Sqrt/Div on x itself then Mul(gamma) and no Sub: an RMSNorm even without Casts.
        var s = new GraphSketch();
        s.Input("x", 1, C);
        string sq = s.Op("Pow", "sq", "x", s.Scalar("two", 2f));
        string ms = s.Op("ReduceMean", "ms", sq);
        s.Last.With("axes", new long[] { -1 });
        string rms = s.Op("Sqrt", "rms", s.Op("Add", "ms_eps", ms, s.Scalar("eps", 1e-5f)));
        string h = s.Op("Mul", "h", s.Op("Div", "normalized", "x", rms), s.Vector("g", C));
        var (_, producers) = Classify(s, h);

        Assert.All(producers, p => Assert.Equal(ProducerKind.DecomposedRMSNorm, p.Kind));
    }

    [Fact]
    public void GammaOfTheWrongLengthOrAGraphInputIsOther()
    {
        var s = new GraphSketch();
        s.Input("x", 1, C);
        s.Node("LayerNormalization", ["x", s.Vector("g4", 4), s.Vector("b4", 4)], ["h4"], "ln4");
        s.Node("MatMul", ["h4", s.Matrix("w", C, 2)], ["y"], "mm");
        s.Node("MatMul", ["x", s.Matrix("w_in", C, 2)], ["y_in"], "mm_input");
        s.Output("y");
        s.Output("y_in");
        var graph = s.Build();
        var linears = LinearNode.FindAll(graph);

        var wrongLength = ActivationProducer.Of(graph, linears[0], linears);
        Assert.Equal((ProducerKind.Other, "ln4"), (wrongLength.Kind, wrongLength.Node!.Name));
        var fromInput = ActivationProducer.Of(graph, linears[1], linears);
        Assert.Equal((ProducerKind.Other, -1), (fromInput.Kind, fromInput.OutputIndex));
        Assert.Null(fromInput.Node);
    }
}
