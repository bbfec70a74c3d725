using OnnxQuant.Advice;
using OnnxQuant.Cli;
using OnnxQuant.Passes;
using OnnxQuant.Passes.W8A8;
using OnnxQuant.Placement;
using OnnxQuant.Recipes;
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
        var trt = Build(report);
        Assert.Equal(["fold-weights", "smoothquant", "w8a8"], trt.Passes.Select(p => p.Name));
        Assert.Equal(W8A8Format.Qdq, trt.Passes.OfType<W8A8RewriteSpec>().Single().Options.Format);
        Assert.False(trt.Passes.OfType<W8A8RewriteSpec>().Single().Options.UnsignedActivations);

        var cpu = Build(Advisor.Advise(Layers(), DeploymentTarget.Cpu, null));
        Assert.Equal(W8A8Format.Int8, cpu.Passes.OfType<W8A8RewriteSpec>().Single().Options.Format);
        Assert.True(cpu.Passes.OfType<W8A8RewriteSpec>().Single().Options.UnsignedActivations);
        Assert.Equal(128, cpu.Calibration.SeqLen);
        Assert.Equal(32, cpu.Calibration.Samples);
        Assert.Null(cpu.Calibration.Stats);

        var w4 = Build(Advisor.Advise(Layers(), DeploymentTarget.Cuda, 0.04), exclude: ["lm_*"]);
        Assert.Equal(["fold-weights", "awq", "w4-rewrite"], w4.Passes.Select(p => p.Name));
        Assert.Equal(LayerEstimates.BlockSize, w4.Passes.OfType<W4RewriteSpec>().Single().Options.Quantization.BlockSize);
        Assert.Equal(LinearScheme.W4, w4.Linears.Default);
        // advise's --exclude and the linears it keeps in float both become float overrides.
        Assert.Equal(["l0", "l1", "lm_*"], w4.Linears.Overrides.Select(o => o.Match).Order());
        Assert.All(w4.Linears.Overrides, o => Assert.Equal(LinearScheme.Float, o.Scheme));
    }

    [Fact]
    public void Every_recipe_advise_can_print_is_read_back_by_RecipeFile_as_the_same_recipe()
    {
        var targets = new DeploymentTarget?[] { null, DeploymentTarget.Cpu, DeploymentTarget.Cuda, DeploymentTarget.TensorRt };
        var bounds = new double?[] { null, 0.04, 0.015, 0.001 };
        var printed = new HashSet<string>();
        foreach (var target in targets)
            foreach (var bound in bounds)
            {
                string text = RecipeWriter.Format(Build(Advisor.Advise(Layers(), target, bound), exclude: ["/^l1[0-9]$/"]));
                var parsed = RecipeFile.Parse(text, "advice.json");
                // Canonical text: what parses back prints the same, so `run` executes exactly what advise printed.
                Assert.Equal(text, RecipeWriter.Format(parsed));
                printed.Add(string.Join(",", parsed.Passes.Select(p => p.Name)));
            }
        // The rules above reach both families: SmoothQuant W8A8 and AWQ W4.
        Assert.Contains("fold-weights,smoothquant,w8a8", printed);
        Assert.Contains("fold-weights,awq,w4-rewrite", printed);

        // Each scheme's own recipe parses too (per-token dynamic and RTN read no statistics).
        foreach (var scheme in AdviceSchemes.All)
        {
            var report = Advisor.Advise(Layers(), null, null);
            var forced = report with { Recommendation = report.Recommendation with { Scheme = scheme } };
            var recipe = Build(forced);
            string text = RecipeWriter.Format(recipe);
            Assert.Equal(text, RecipeWriter.Format(RecipeFile.Parse(text, "advice.json")));
            Assert.Equal(scheme is not (AdviceScheme.W8A8PerToken or AdviceScheme.W4Rtn), recipe.Pipeline().NeedsCalibration);
        }
    }

    private static Recipe Build(AdviceReport report, string[]? exclude = null) =>
        AdviceRecipe.Build(report, exclude ?? [], includeLmHead: false, new CalibrationInfo { Samples = 32, SequenceLength = 128, Seed = 3 }, new CalibrationSettings());
}
