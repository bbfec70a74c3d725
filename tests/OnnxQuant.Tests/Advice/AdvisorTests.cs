using OnnxQuant.Advice;
using OnnxQuant.Cli;
using OnnxQuant.Placement;
using OnnxQuant.Statistics;

namespace OnnxQuant.Tests.Advice;

/// <summary>The recommendation rules of <see cref="Advisor"/> on made-up estimates, and the recipe each scheme becomes.</summary>
public sealed class AdvisorTests
{
    // 20 linears: W8A8 SmoothQuant 0.01 everywhere; W4 AWQ 0.03 except two at 0.2; naive 0.1; per-token 0.02; RTN 0.05.
    private static IReadOnlyList<LayerEstimate> Layers()
    {
        var linears = Enumerable.Range(0, 20).Select(i => new LinearEstimate($"l{i}", 64, 64, new Dictionary<AdviceScheme, double>
        {
            [AdviceScheme.W8A8Naive] = 0.1,
            [AdviceScheme.W8A8SmoothQuant] = 0.01,
            [AdviceScheme.W8A8PerToken] = 0.02,
            [AdviceScheme.W4Rtn] = 0.05,
            [AdviceScheme.W4Awq] = i < 2 ? 0.2 : 0.03,
        })).ToList();
        return [new LayerEstimate("x", 40f, OutlierSeverity.Severe, 128, 0.5f, linears)];
    }

    [Fact]
    public void Without_a_bound_the_lowest_error_scheme_is_recommended_and_the_ranking_follows_the_errors()
    {
        var report = Advisor.Advise(Layers(), null, null);
        Assert.Equal(AdviceScheme.W8A8SmoothQuant, report.Recommendation.Scheme);
        Assert.Empty(report.Recommendation.KeepInFloat);
        Assert.Equal([AdviceScheme.W8A8SmoothQuant, AdviceScheme.W8A8PerToken, AdviceScheme.W4Rtn, AdviceScheme.W4Awq, AdviceScheme.W8A8Naive],
            report.Schemes.OrderBy(s => s.Rank).Select(s => s.Scheme));
        // RMS: AWQ = sqrt((2 * 0.04 + 18 * 0.0009) / 20).
        Assert.Equal(Math.Sqrt((2 * 0.04 + 18 * 0.0009) / 20), report.Schemes.Single(s => s.Scheme == AdviceScheme.W4Awq).Error, 12);
    }

    [Fact]
    public void A_bound_picks_the_most_compact_scheme_within_it_keeping_its_worst_linears_in_float()
    {
        var report = Advisor.Advise(Layers(), null, 0.04);
        Assert.Equal(AdviceScheme.W4Awq, report.Recommendation.Scheme);
        Assert.Equal(["l0", "l1"], report.Recommendation.KeepInFloat.Order());
        Assert.Equal(Math.Sqrt(18 * 0.0009 / 20), report.Recommendation.ExpectedError, 12);
        Assert.True(report.Recommendation.MeetsBound);

        // Below W4's errors: the first W8A8 form within the bound.
        Assert.Equal(AdviceScheme.W8A8SmoothQuant, Advisor.Advise(Layers(), null, 0.015).Recommendation.Scheme);
        var impossible = Advisor.Advise(Layers(), null, 0.001).Recommendation;
        Assert.False(impossible.MeetsBound);
        Assert.Equal(AdviceScheme.W8A8SmoothQuant, impossible.Scheme);
    }

    [Fact]
    public void TensorRT_gets_only_static_W8A8_and_the_recipes_carry_the_target_form()
    {
        var report = Advisor.Advise(Layers(), DeploymentTarget.TensorRt, 0.04);
        Assert.Equal(AdviceScheme.W8A8SmoothQuant, report.Recommendation.Scheme);
        Assert.Equal([AdviceScheme.W8A8Naive, AdviceScheme.W8A8SmoothQuant], report.Schemes.Where(s => s.Available).Select(s => s.Scheme));
        var info = new CalibrationInfo { Samples = 32, SequenceLength = 128 };
        var trt = AdviceRecipe.Build(report, info, includeLmHead: false);
        Assert.Equal("qdq", (string)trt["passes"]![2]!["format"]!);

        var cpu = AdviceRecipe.Build(Advisor.Advise(Layers(), DeploymentTarget.Cpu, null), info, false);
        Assert.True((bool)cpu["passes"]![2]!["uint8Activations"]!);
        Assert.Equal(128, (int)cpu["calibration"]!["seqLen"]!);

        var w4 = AdviceRecipe.Build(Advisor.Advise(Layers(), DeploymentTarget.Cuda, 0.04), info, false);
        Assert.Equal(["fold-weights", "awq", "w4-rewrite"], w4["passes"]!.AsArray().Select(p => (string)p!["pass"]!));
        Assert.Equal("w4", (string)w4["linears"]!["default"]!);
        Assert.Equal(["l0", "l1"], w4["linears"]!["overrides"]!.AsArray().Select(o => (string)o!["match"]!).Order());
        Assert.All(w4["linears"]!["overrides"]!.AsArray(), o => Assert.Equal("float", (string)o!["scheme"]!));
    }
}
