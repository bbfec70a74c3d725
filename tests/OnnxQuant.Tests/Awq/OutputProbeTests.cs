using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.BlockEvaluation;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.Passes;
using OnnxQuant.Quantization;
using OnnxQuant.Tests.Eval;
using OnnxQuant.Tests.Fixtures;
using OnnxQuant.Tests.Support;
using Xunit.Abstractions;

namespace OnnxQuant.Tests.Awq;

/// <summary>Mixed precision's model-output sensitivity: the ONNX Runtime probe, checked against the whole model run independently.</summary>
public sealed class OutputProbeTests
{
    private static readonly Int4QuantOptions Q32 = new() { BlockSize = 32 };
    private static readonly SessionSettings Cpu = new() { Device = ExecutionDevice.Cpu, Threads = 1 };
    private readonly ITestOutputHelper _output;

    public OutputProbeTests(ITestOutputHelper output) => _output = output;

    private static FixtureOptions Fixture() =>
        new() { Family = FixtureFamily.TorchLlama, Layers = 2, Hidden = 64, Heads = 4, Intermediate = 128, Vocab = 128, OutlierChannels = 3, Seed = 3 };

    private static List<int[]> Windows(FixtureOptions options, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, 2).Select(_ => Enumerable.Range(0, 16).Select(_ => rng.Next(options.Vocab)).ToArray()).ToList();
    }

    [Theory]
    [InlineData("down_proj")]
    [InlineData("q_proj")]
    public void ProbeErrorEqualsTheWholeModelsLogitsError(string which)
    {
        var options = Fixture();
        var windows = Windows(options, 4);
        using var model = FixtureModels.BuildModel(options);
        var linears = LinearNode.FindAll(model.Graph);
        var linear = linears.First(l => l.Name.Contains(which, StringComparison.Ordinal));
        var weight = linear.ReadWeightKN(model.Graph);
        var rounded = (float[])weight.Clone();
        Int4BlockQuantizer.FakeQuantizeInPlace(rounded, linear.K, linear.N, Q32);

        using var probe = new OrtOutputProbe(windows, Cpu).Open(model, linears);
        Assert.Equal("logits", probe.Output);
        double probed = probe.RelativeError(linear, rounded);
        double unchanged = probe.RelativeError(linear, weight);

        // Independently: the fixture's float model and a copy with the rounded weight, run whole on the same tokens.
        var feeds = FixtureFeeds.For(options, 2, 16, ids: windows.SelectMany(w => w.Select(t => (long)t)).ToArray());
        var reference = FixtureFeeds.Run(FixtureModels.Build(options), feeds, "logits")["logits"].Values;
        using var copy = FixtureModels.BuildModel(options);
        copy.Graph.SetInitializer(LinearNode.FindAll(copy.Graph).Single(l => l.Name == linear.Name).MakeWeight(rounded));
        var actual = FixtureFeeds.Run(SessionProto.Build(copy, out _), feeds, "logits")["logits"].Values;
        double difference = actual.Zip(reference).Sum(p => (double)(p.First - p.Second) * (p.First - p.Second));
        double expected = difference / reference.Sum(v => (double)v * v);
        _output.WriteLine($"{linear.Name}: probe {probed:g6}, whole model {expected:g6}, same weight {unchanged:g3}");
        Assert.True(expected > 1e-8);
        Assert.Equal(expected, probed, 1e-3 * expected);
        Assert.True(unchanged < 1e-12, $"the unchanged weight moved the output by {unchanged:g3}");
    }

    [Fact]
    public void AnEncodersProbeMeasuresTheMeanPooledEmbedding()
    {
        var options = new FixtureOptions { Family = FixtureFamily.Bert, Layers = 2, Hidden = 64, Heads = 4, Intermediate = 128, Vocab = 128, OutlierChannels = 2, Seed = 7 };
        var windows = Windows(options, 6);
        using var model = FixtureModels.BuildModel(options);
        string output = ModelTaskDetection.Detect(model.Graph).Output!;
        var linears = LinearNode.FindAll(model.Graph);
        var linear = linears.First(l => l.K == options.Intermediate);   // the MLP's down-projection
        var rounded = linear.ReadWeightKN(model.Graph);
        Int4BlockQuantizer.FakeQuantizeInPlace(rounded, linear.K, linear.N, Q32);

        using var probe = new OrtOutputProbe(windows, Cpu).Open(model, linears);
        Assert.Equal($"mean-pooled '{output}'", probe.Output);
        double probed = probe.RelativeError(linear, rounded);

        // Independently: both models whole, with the probe's feeds (token types zero), hidden states averaged per window.
        var feeds = FixtureFeeds.For(options, 2, 16, ids: windows.SelectMany(w => w.Select(t => (long)t)).ToArray());
        feeds["token_type_ids"] = OrtFeed.Int64(new long[2 * 16], 2, 16);
        using var copy = FixtureModels.BuildModel(options);
        copy.Graph.SetInitializer(LinearNode.FindAll(copy.Graph).Single(l => l.Name == linear.Name).MakeWeight(rounded));
        double[] Pooled(OrtResult r) =>
            r.Values.Chunk(r.Dim(1) * r.Dim(2)).SelectMany(window => EvalTestData.MeanPool(window, r.Dim(1))).ToArray();
        var reference = Pooled(FixtureFeeds.Run(FixtureModels.Build(options), feeds, output)[output]);
        var actual = Pooled(FixtureFeeds.Run(SessionProto.Build(copy, out _), feeds, output)[output]);
        double expected = actual.Zip(reference).Sum(p => (p.First - p.Second) * (p.First - p.Second)) / reference.Sum(v => v * v);
        _output.WriteLine($"{linear.Name}: probe {probed:g6}, whole model pooled {expected:g6}");
        Assert.True(expected > 1e-8);
        Assert.Equal(expected, probed, 1e-3 * expected);
    }

    [Fact]
    public void ModelOutputSensitivityPlansWithTheProbesErrorsWithinTheBudget()
    {
        var options = Fixture();
        var h = new AwqFixtureHarness(options, samples: 4, sequence: 32) { OutputProbe = new OrtOutputProbe(Windows(options, 5), Cpu) };
        var rewrite = new W4RewriteOptions { Quantization = Q32 };
        var bytes = h.Apply(new MixedPrecisionPass(new MixedPrecisionOptions(new SizeBudget.AverageBits(6), rewrite) { Sensitivity = BitsSensitivity.ModelOutput }),
            new W4RewritePass(rewrite));
        var plan = h.Last.Get<BitsPlan>("test");
        foreach (var c in plan.Choices)
            _output.WriteLine($"{c.Linear}: {plan.Bits[c.Linear]} bits, errors {c.Error4:g3} / {c.Error8:g3}");
        Assert.True(plan.AverageBits <= 6 && plan.AverageBits > 5.5, $"average {plan.AverageBits}");
        // Every planned linear reaches the logits, and 8 bits move them much less than 4 (q/k least: the softmax).
        Assert.All(plan.Choices, c => Assert.True(c.Error4 > 0 && c.Error8 < c.Error4 / 5, $"{c.Linear}: {c.Error4:g3} / {c.Error8:g3}"));
        Assert.Contains(plan.Bits.Values, b => b == 8);
        Assert.NotEmpty(bytes);
    }
}
