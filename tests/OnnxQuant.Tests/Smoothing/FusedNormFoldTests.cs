using Google.Protobuf;
using OnnxQuant.Analysis;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Smoothing;
using OnnxQuant.Tests.Analysis;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Smoothing;

/// <summary>
/// Producer kinds the fixtures only show residual-fed (so never folded there): LayerNormalization, SkipLayerNormalization
/// and decomposed LayerNorm with beta feeding linears alone, and a Gemm (transB, bias) feeding a MatMul. Each folds
/// into gamma/beta or columns/bias and the outputs stay equal; SkipLayerNormalization's residual sum is untouched.
/// </summary>
public class FusedNormFoldTests
{
    private const int Rows = 6, C = 8;

    [Fact]
    public void LayerNormalizationFoldsIntoGammaAndBeta()
    {
        var s = new GraphSketch();
        s.Input("x", Rows, C);
        s.Node("LayerNormalization", ["x", s.Vector("gamma", C), s.Vector("beta", C)], ["y"], "ln").With("axis", -1L);
        AddConsumers(s, "y");
        CheckExact(s, ProducerKind.LayerNorm, FoldKind.NormGamma, changed: ["gamma", "beta"]);
    }

    [Fact]
    public void SkipLayerNormalizationFoldsIntoGammaAndBetaButNotSkipOrBias()
    {
        var s = new GraphSketch();
        s.Input("x", Rows, C);
        s.Input("skip", Rows, C);
        s.Node("SkipLayerNormalization", ["x", "skip", s.Vector("gamma", C), s.Vector("beta", C), s.Vector("bias", C)], ["y", "", "", "sum"], "sln", Nodes.MicrosoftDomain)
            .With("epsilon", 1e-5f);
        s.Output("sum", Rows, C);
        AddConsumers(s, "y");
        CheckExact(s, ProducerKind.SkipLayerNorm, FoldKind.NormGamma, changed: ["gamma", "beta"], unchanged: ["bias"]);
    }

    [Fact]
    public void DecomposedLayerNormFoldsIntoTheFinalMulAndAdd()
    {
        var s = new GraphSketch();
        s.Input("x", Rows, C);
        var (y, gamma, beta) = s.DecomposedLayerNorm("x", "ln", C);
        AddConsumers(s, y);
        CheckExact(s, ProducerKind.DecomposedLayerNorm, FoldKind.NormGamma, changed: [gamma, beta]);
    }

    [Fact]
    public void GemmWithTransposedWeightAndBiasFoldsItsColumns()
    {
        var s = new GraphSketch();
        s.Input("x", Rows, 5);
        s.Node("Gemm", ["x", s.Matrix("w0", C, 5), s.Vector("c0", C)], ["h"], "gemm").With("transB", 1L).With("alpha", 0.5f).With("beta", 2f);
        AddConsumers(s, "h");
        CheckExact(s, ProducerKind.MatMul, FoldKind.LinearColumns, changed: ["w0", "c0"]);
    }

    // A MatMul and a Gemm (transB, bias) read the activation; nothing else does.
    private static void AddConsumers(GraphSketch s, string activation)
    {
        s.Node("MatMul", [activation, s.Matrix("w1", C, 4)], ["out1"], "mm");
        s.Node("Gemm", [activation, s.Matrix("w2", 3, C), s.Vector("c2", 3)], ["out2"], "gemm2").With("transB", 1L);
        s.Output("out1", Rows, 4);
        s.Output("out2", Rows, 3);
    }

    private static void CheckExact(GraphSketch sketch, ProducerKind kind, FoldKind fold, string[] changed, string[]? unchanged = null)
    {
        var proto = sketch.ToModel(17, (Nodes.MicrosoftDomain, 1));
        var feeds = proto.Graph.Input.ToDictionary(i => i.Name, i => OrtFeed.Float(sketch.RandomValues(Rows * (int)i.Type.TensorType.Shape.Dim[1].DimValue),
            Rows, i.Type.TensorType.Shape.Dim[1].DimValue));
        Dictionary<string, OrtResult> before;
        using (var runner = new OrtRunner(proto.ToByteArray()))
            before = runner.Run(feeds);

        using var model = OnnxModel.FromProto(proto);
        var group = Assert.Single(SmoothingGroups.Find(model.Graph), g => g.Consumers.Count == 2);
        Assert.Equal(kind, group.ProducerKind);
        Assert.Equal(fold, group.Producer.Kind);
        var originals = changed.Concat(unchanged ?? []).ToDictionary(n => n, n => model.Graph.GetConstant(n)!.ToFloats());
        var scale = Enumerable.Range(0, C).Select(j => 0.1f + 1.7f * j).ToArray();
        group.Apply(model.Graph, scale);
        foreach (var name in changed)
            Assert.NotEqual(originals[name], model.Graph.GetConstant(name)!.ToFloats());
        foreach (var name in unchanged ?? [])
            Assert.Equal(originals[name], model.Graph.GetConstant(name)!.ToFloats());

        using var afterRunner = new OrtRunner(W8A8.W8A8TestKit.Serialize(model));
        var after = afterRunner.Run(feeds);
        foreach (var (name, result) in before)
            for (int i = 0; i < result.Values.Length; i++)
                Assert.True(Math.Abs(result.Values[i] - after[name].Values[i]) <= 1e-4f * (1 + Math.Abs(result.Values[i])),
                    $"{name}[{i}]: {result.Values[i]} before, {after[name].Values[i]} after folding");
    }
}
