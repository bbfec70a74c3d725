using OnnxQuant.Fixtures;
using OnnxQuant.Tests.Cli;
using Xunit.Abstractions;

namespace OnnxQuant.Tests.Eval;

/// <summary>
/// The bench's command line on a small outlier fixture: calibrate once, `smooth --alpha none` (naive W8A8) and
/// `smooth --alpha 0.8` from the same statistics, then `eval --reference` on each.
/// </summary>
public class NaiveW8A8PipelineTests(ITestOutputHelper log)
{
    [Fact]
    public void NaiveW8A8SmoothsNothingAndLosesMoreThanSmoothQuantOnOutliers()
    {
        using var folder = new TempFolder();
        string model = FixtureModels.Save(EvalTestData.Lm(0) with { OutlierChannels = 3, OutlierScale = 50f }, folder.Path);
        string text = EvalTestData.PersuasionExcerpt(folder, 8000);
        string stats = folder.File("model.calib");
        string tokenizer = EvalTestData.AustenTokenizer;
        var calibrate = CliHarness.Run("calibrate", model, "-o", stats, "--data", text, "--tokenizer", tokenizer, "--samples", "8", "--seq-len", "64", "--device", "cpu", "--json");
        Assert.Equal(0, calibrate.ExitCode);

        (int Smoothed, int Quantized, double Error, double Agreement) Run(string alpha)
        {
            string output = folder.File($"w8a8-{alpha}.onnx");
            var smooth = CliHarness.Run("smooth", model, "-o", output, "--alpha", alpha, "--stats", stats, "--no-verify", "--device", "cpu", "--json");
            Assert.True(smooth.ExitCode == 0, smooth.Error);
            var json = smooth.Json();
            int smoothed = json.GetProperty("groups").EnumerateArray().Count(g => g.GetProperty("status").GetString() is "folded" or "inserted");
            var eval = CliHarness.Run("eval", output, "--reference", model, "--data", text, "--tokenizer", tokenizer, "--max-tokens", "512", "--context", "128", "--device", "cpu", "--json");
            Assert.True(eval.ExitCode == 0, eval.Error);
            var p = eval.Json().GetProperty("perplexity");
            return (smoothed, json.GetProperty("linears_quantized").GetInt32(), p.GetProperty("relative_error").GetDouble(), p.GetProperty("top1_agreement").GetDouble());
        }

        var naive = Run("none");
        var smoothQuant = Run("0.8");

        log.WriteLine($"naive: logits error {naive.Error:E3}, top-1 {naive.Agreement:P1}; SmoothQuant 0.8: {smoothQuant.Error:E3}, top-1 {smoothQuant.Agreement:P1}");
        Assert.Equal(0, naive.Smoothed);
        Assert.True(smoothQuant.Smoothed > 0);
        Assert.Equal(naive.Quantized, smoothQuant.Quantized);
        Assert.True(naive.Quantized >= 14, $"{naive.Quantized} linears quantized"); // 2 layers x q k v o gate up down
        Assert.True(naive.Error > 2 * smoothQuant.Error, $"naive W8A8 logits error {naive.Error:E3} vs SmoothQuant {smoothQuant.Error:E3}");
    }

    [Fact]
    public void AlphaNoneWithoutQuantizingIsAUsageError()
    {
        using var folder = new TempFolder();
        string model = FixtureModels.Save(EvalTestData.Lm(0), folder.Path);

        var result = CliHarness.Run("smooth", model, "--alpha", "none", "--no-quantize", "--stats", folder.File("missing.calib"));

        Assert.Equal((int)ExitCode.Usage, result.ExitCode);
        Assert.Contains("--alpha none", result.Error);
    }
}
