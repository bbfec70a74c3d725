using System.Text.Json;
using OnnxQuant.Advice;
using OnnxQuant.Analysis;
using OnnxQuant.IO;
using OnnxQuant.Recipes;
using OnnxQuant.Tests.Cli;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Advice;

/// <summary>
/// `advise` ranks schemes as the bench measured them end to end (bench/results.md), on the Austen LM's outlier twin and
/// on MiniLM; it recommends the measured best, and --target / --max-error change the recommendation as documented.
/// </summary>
public sealed class AdviseTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>Schemes whose measured errors differ by less than this factor are too close for a ranking to be asserted.</summary>
    private const double Separation = 1.3;

    private string WriteOutlierTwin()
    {
        string source = Path.Combine(CliHarness.RepoRoot(), "models", "austen-lm");
        foreach (var file in new[] { "vocab.json", "merges.txt" })
            File.Copy(Path.Combine(source, file), _temp.File(file));
        string model = _temp.File("model.onnx");
        OnnxQuant.Fixtures.OutlierTwin.Write(Path.Combine(source, "model.onnx"), model);
        return model;
    }

    private string Calibrate(string model)
    {
        string stats = _temp.File(Path.GetFileNameWithoutExtension(model) + ".calib");
        var run = CliHarness.Run("calibrate", model, "-o", stats, "--samples", "32", "--seq-len", "128", "--device", "cpu", "--json");
        Assert.True(run.ExitCode == 0, run.Error);
        return stats;
    }

    private static JsonElement Advise(string model, string stats, params string[] options)
    {
        var run = CliHarness.Run(["advise", model, "--stats", stats, "--json", .. options]);
        Assert.True(run.ExitCode == 0, run.Error);
        return run.Json().Clone();
    }

    private static Dictionary<AdviceScheme, double> Expected(JsonElement advice) =>
        advice.GetProperty("schemes").EnumerateArray().ToDictionary(
            s => Enum.Parse<AdviceScheme>(s.GetProperty("scheme").GetString()!), s => s.GetProperty("error").GetDouble());

    private static void AssertRankingAgrees(string section, JsonElement advice)
    {
        var measured = BenchResults.Errors(section);
        var expected = Expected(advice);
        int compared = 0;
        foreach (var a in measured.Keys)
            foreach (var b in measured.Keys.Where(b => measured[b] >= measured[a] * Separation))
            {
                compared++;
                Assert.True(expected[a] < expected[b],
                    $"{section}: bench measured {a} ({measured[a]}) well below {b} ({measured[b]}), advise expects {expected[a]:0.0000} vs {expected[b]:0.0000}");
            }
        Assert.True(compared >= 4, $"{section}: only {compared} scheme pairs are separated enough to compare");
        // The recommendation without a target or bound is the scheme the bench measured best.
        var best = measured.MinBy(p => p.Value).Key;
        Assert.Equal(best.ToString(), advice.GetProperty("recommendation").GetProperty("scheme").GetString());
    }

    [Fact]
    public void On_the_outlier_twin_advise_ranks_schemes_as_the_bench_measured_them_and_sees_the_outliers()
    {
        string model = WriteOutlierTwin();
        string stats = Calibrate(model);
        var advice = Advise(model, stats);
        AssertRankingAgrees("austen-lm-outliers", advice);

        // The twin's norms carry channels x50 (docs/architecture.md, "Outlier twins"): their activations are severe.
        var layers = advice.GetProperty("layers").EnumerateArray().ToList();
        var normFed = layers.Where(l => l.GetProperty("activation").GetString()!.Contains("layernorm")).ToList();
        Assert.Equal(12, normFed.Count);
        Assert.All(normFed, l => Assert.Equal("Severe", l.GetProperty("severity").GetString()));
        // The other inputs keep the trained model's own channels (one MLP input of layer 2 has a real outlier, ~38x).
        var others = layers.Except(normFed).Select(l => l.GetProperty("max_over_median").GetDouble()).Order().ToList();
        double minNormFed = normFed.Min(l => l.GetProperty("max_over_median").GetDouble());
        Assert.True(minNormFed > 5 * others[others.Count / 2], $"norm-fed ratio {minNormFed} against a median of {others[others.Count / 2]} elsewhere");

        // The recipe applies the recommendation in docs/recipes.md's format.
        var recipe = advice.GetProperty("recipe");
        Assert.Equal(1, recipe.GetProperty("recipe").GetInt32());
        Assert.Equal(["fold-weights", "smoothquant", "w8a8"], recipe.GetProperty("passes").EnumerateArray().Select(p => p.GetProperty("pass").GetString()));
        Assert.Equal("w8a8", recipe.GetProperty("linears").GetProperty("default").GetString());

        // TensorRT runs only the QDQ forms of static W8A8.
        var trt = Advise(model, stats, "--target", "tensorrt");
        Assert.Equal("qdq", trt.GetProperty("recipe").GetProperty("passes")[2].GetProperty("format").GetString());
        Assert.All(trt.GetProperty("schemes").EnumerateArray().Where(s => s.GetProperty("scheme").GetString()!.StartsWith("W4")),
            s => Assert.False(s.GetProperty("available").GetBoolean()));
    }

    [ArtifactFact(Artifact.MiniLm)]
    public void On_MiniLM_advise_ranks_schemes_as_the_bench_measured_them()
    {
        string model = RequiredArtifact.MiniLmModel;
        AssertRankingAgrees("minilm", Advise(model, Calibrate(model)));
    }

    [Fact]
    public void The_recipe_advise_prints_runs_with_onnxquant_run_and_is_the_one_the_written_model_records()
    {
        string model = Path.Combine(CliHarness.RepoRoot(), "models", "tiny-llama", "model.onnx");
        var advise = CliHarness.Run("advise", model, "--samples", "8", "--seq-len", "64", "--device", "cpu", "--print-recipe");
        Assert.True(advise.ExitCode == 0, advise.Error);
        var printed = RecipeFile.Parse(advise.Out, _temp.File("advice.json"));
        Assert.Equal(8, printed.Calibration.Samples);
        Assert.Equal(64, printed.Calibration.SeqLen);
        string recipePath = _temp.File("advice.json");
        File.WriteAllText(recipePath, advise.Out);

        string output = _temp.File("advised.onnx");
        var run = CliHarness.Run("run", recipePath, model, "-o", output, "--device", "cpu", "--json");
        Assert.True(run.ExitCode == 0, run.Error);
        var summary = run.Json();
        // Every linear the recipe sends to its rewrite is quantized; the ones it keeps in float are not.
        bool w4 = printed.Linears.Default == LinearScheme.W4;
        int quantized = summary.GetProperty(w4 ? "linears_w4" : "linears_w8a8").GetInt32();
        using var input = ModelFile.Load(model);
        var table = LinearAnalysis.Analyze(input.Graph, printed.Linears.Quantized());
        Assert.Equal(table.Quantizable.Count(), quantized);
        Assert.True(quantized > 0);
        Assert.Equal(0, summary.GetProperty(w4 ? "linears_w8a8" : "linears_w4").GetInt32());

        // The written model records the same recipe.
        using var written = ModelFile.Load(output);
        string recorded = ModelProvenance.Read(written.Header).Single(e => e.Key == ModelProvenance.RecipeKey).Value;
        Assert.Equal(RecipeWriter.Format(printed), RecipeWriter.Format(RecipeFile.Parse(recorded, recipePath)));
    }

    [Fact]
    public void A_bad_bound_is_a_usage_error()
    {
        var run = CliHarness.Run("advise", Path.Combine(CliHarness.RepoRoot(), "models", "tiny-llama", "model.onnx"), "--max-error", "-1");
        Assert.Equal((int)ExitCode.Usage, run.ExitCode);
        Assert.Contains("--max-error", run.Error);
    }
}
