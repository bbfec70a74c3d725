using OnnxQuant.Awq;
using OnnxQuant.Fixtures;
using OnnxQuant.Passes;
using OnnxQuant.Quantization;
using Xunit.Abstractions;

namespace OnnxQuant.Tests.Awq;

/// <summary>AWQ end to end on LLM-shaped fixtures with injected outlier channels, run in ONNX Runtime CPU.</summary>
public sealed class AwqPassTests
{
    private readonly ITestOutputHelper _output;

    public AwqPassTests(ITestOutputHelper output) => _output = output;

    private static readonly Int4QuantOptions Q32 = new() { BlockSize = 32 };

    public static TheoryData<FixtureFamily, string, double> Families => new()
    {
        // family, output compared, AWQ error must be below this fraction of RTN's
        { FixtureFamily.TorchLlama, "logits", 0.5 },
        { FixtureFamily.GenAiLlama, "logits", 0.5 },
        { FixtureFamily.Bert, "last_hidden_state", 0.6 },
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void AwqBeatsRoundToNearestOnOutlierFixtures(FixtureFamily family, string output, double maxRatio)
    {
        var options = new FixtureOptions { Family = family, Layers = 2, Hidden = 64, Heads = 4, Intermediate = 128, Vocab = 128, OutlierChannels = 3, OutlierScale = 50f, Seed = 3 };
        var h = new AwqFixtureHarness(options);
        var w4 = new W4RewritePass(new W4RewriteOptions { Quantization = Q32 });

        double rtn = h.RelativeError(h.Run(h.Apply(w4)), output);
        var awq = new AwqPass(new AwqPassOptions { Search = new AwqOptions { Quantization = Q32 } });
        double awqError = h.RelativeError(h.Run(h.Apply(awq, new W4RewritePass(new W4RewriteOptions { Quantization = Q32 }))), output);

        var decisions = h.Last.Get<AwqReport>("test").Decisions;
        foreach (var d in decisions)
            _output.WriteLine($"{d.Activation}: {d.Target} [{string.Join(", ", d.Consumers)}] {d.StatusText} r={d.Ratio:0.00} awq/rtn={d.LossRatio:0.000}");
        _output.WriteLine($"{family}: relative MSE of {output}: RTN {rtn:g4}, AWQ {awqError:g4} (ratio {awqError / rtn:0.000})");
        Assert.True(rtn > 1e-5, $"RTN error {rtn:g3} is too small for the comparison to mean anything");
        Assert.True(awqError < maxRatio * rtn, $"AWQ {awqError:g4} vs RTN {rtn:g4}");
        Assert.Contains(decisions, d => d.IsScaled && d.LossRatio < 0.5);
    }

    // The search half alone must not change what the model computes: s is folded exactly.
    [Theory]
    [InlineData(FixtureFamily.TorchLlama, "logits")]
    [InlineData(FixtureFamily.Bert, "last_hidden_state")]
    public void ScalingAloneKeepsTheFunction(FixtureFamily family, string output)
    {
        var options = new FixtureOptions { Family = family, Layers = 1, Hidden = 64, Heads = 4, Intermediate = 128, Vocab = 128, OutlierChannels = 2, Seed = 4 };
        var h = new AwqFixtureHarness(options, samples: 4, sequence: 16);
        var awq = new AwqPass(new AwqPassOptions { Search = new AwqOptions { Quantization = Q32, GridPoints = 10, Clip = false } });
        double error = h.RelativeError(h.Run(h.Apply(awq)), output);
        Assert.Contains(h.Last.Get<AwqReport>("test").Decisions, d => d.Status == AwqStatus.Scaled);
        Assert.True(error < 1e-9, $"relative MSE {error:g3} after folding only");
    }

    [Fact]
    public void ClipSearchSkipsQueryAndKeyAndClipsTheRest()
    {
        var options = new FixtureOptions { Family = FixtureFamily.TorchLlama, Layers = 1, Hidden = 64, Heads = 4, Intermediate = 128, Vocab = 128, OutlierChannels = 2, Seed = 5 };
        var h = new AwqFixtureHarness(options, samples: 4, sequence: 16);
        using var model = FixtureModels.BuildModel(options);
        var linears = OnnxQuant.Analysis.LinearNode.FindAll(model.Graph);
        var qk = linears.Where(l => AttentionRoles.IsQueryOrKey(model.Graph, l)).Select(l => l.Name).Order().ToList();
        Assert.Equal(2, qk.Count);
        Assert.All(qk, n => Assert.Matches("q_proj|k_proj", n));

        var awq = new AwqPass(new AwqPassOptions { Search = new AwqOptions { Quantization = Q32, GridPoints = 5, Clip = true, ClipSteps = 10 } });
        double rtnClip = h.RelativeError(h.Run(h.Apply(awq, new W4RewritePass(new W4RewriteOptions { Quantization = Q32 }))), "logits");
        Assert.Contains(h.Last.Get<AwqReport>("test").Decisions, d => d.ClippedFraction > 0);
        Assert.True(double.IsFinite(rtnClip) && rtnClip < 0.5, $"clipped model error {rtnClip:g3}");
    }
}
