using OnnxQuant.Analysis;
using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Passes;
using OnnxQuant.Quantization;
using OnnxQuant.Tests.Fixtures;
using Xunit.Abstractions;

namespace OnnxQuant.Tests.Awq;

/// <summary>
/// The rewrite on whole fixtures: every quantized linear becomes MatMulNBits, and ORT's result matches the same fixture
/// with each weight replaced by its fake-quantized float copy (so only the kernel's arithmetic differs).
/// </summary>
public sealed class W4RewriteFixtureTests
{
    private readonly ITestOutputHelper _output;

    public W4RewriteFixtureTests(ITestOutputHelper output) => _output = output;

    [Theory]
    [InlineData(FixtureFamily.Bert, false, "last_hidden_state", 1e-4)]     // MatMul + bias Add, pooler Gemm(transB) with C
    [InlineData(FixtureFamily.TorchLlama, false, "logits", 1e-4)]
    [InlineData(FixtureFamily.GenAiLlama, true, "logits", 2e-2)]            // fp16 weights, scales and activations
    public void RewrittenFixtureMatchesItsFakeQuantTwin(FixtureFamily family, bool fp16, string output, double tolerance)
    {
        var options = new FixtureOptions { Family = family, Layers = 2, Hidden = 64, Heads = 4, Intermediate = 96, Vocab = 128, Fp16 = fp16, Seed = 11 };
        var quant = new Int4QuantOptions { BlockSize = 32 };
        var feeds = FixtureFeeds.For(options, 2, 12, seed: 3);

        using var model = FixtureModels.BuildModel(options);
        var linears = LinearNode.FindAll(model.Graph);
        var gemms = linears.Count(l => l.OpType == "Gemm");
        var biased = linears.Count(l => l.Bias is not null);
        var result = new W4RewritePass(new W4RewriteOptions { Quantization = quant }).Run(model, new PassContext());
        int quantized = result.Rows.Count(r => r.Columns["status"] == "MatMulNBits");
        var nbits = model.Graph.Nodes.Where(n => n.IsMicrosoft("MatMulNBits")).ToList();
        Assert.Equal(quantized, nbits.Count);
        Assert.Equal(linears.Count - (family == FixtureFamily.Bert ? 0 : 1), quantized);   // LM head kept
        Assert.Equal(biased, nbits.Count(n => n.InputAt(5) is not null));
        Assert.DoesNotContain(model.Graph.Nodes, n => n.IsOnnx("Gemm"));
        if (family == FixtureFamily.Bert) Assert.True(gemms > 0);
        var actual = FixtureFeeds.Run(SessionProto.Build(model, out _), feeds)[output].Values;

        using var twin = FixtureModels.BuildModel(options);
        foreach (var linear in LinearNode.FindAll(twin.Graph).Where(l => result.Rows.Single(r => r.Subject == l.Name).Columns["status"] == "MatMulNBits"))
        {
            var w = linear.ReadWeightKN(twin.Graph);
            Int4BlockQuantizer.FakeQuantizeInPlace(w, linear.K, linear.N, quant with { ScaleType = linear.WeightType });
            twin.Graph.SetInitializer(linear.MakeWeight(w));
        }
        var expected = FixtureFeeds.Run(SessionProto.Build(twin, out _), feeds)[output].Values;
        var original = FixtureFeeds.Run(FixtureModels.Build(options), feeds)[output].Values;

        double diff = FixtureFeeds.RelativeMaxError(actual, expected), quantError = FixtureFeeds.RelativeMaxError(original, expected);
        _output.WriteLine($"{family}{(fp16 ? " fp16" : "")}: max |MatMulNBits - fake-quant twin| / max = {diff:g3}; the quantization itself moves it by {quantError:g3}");
        Assert.True(diff < tolerance, $"MatMulNBits model differs from its fake-quant twin by {diff:g3}");
        Assert.True(quantError > 10 * diff, $"quantization error {quantError:g3} should dwarf the kernel difference {diff:g3}");
    }
}
