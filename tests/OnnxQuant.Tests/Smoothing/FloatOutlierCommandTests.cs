using System.Text.Json;
using OnnxQuant.Fixtures;
using OnnxQuant.Statistics;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.Smoothing;

/// <summary>
/// `smooth --float-outliers 6` on the Austen LM's outlier twin (3 hidden channels of every RMSNorm x50): the float channels
/// of every activation are exactly those whose calibrated max |x| exceeds 6, listed per group in --json, and the
/// held-out error drops against the same run without the option.
/// </summary>
public sealed class FloatOutlierCommandTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Every_channel_over_the_threshold_is_kept_in_float_and_the_error_drops()
    {
        string source = Path.Combine(CliHarness.RepoRoot(), "models", "austen-lm");
        foreach (var file in new[] { "vocab.json", "merges.txt" })
            File.Copy(Path.Combine(source, file), _folder.File(file));
        string model = _folder.File("model.onnx");
        OutlierTwin.Write(Path.Combine(source, "model.onnx"), model);
        string stats = _folder.File("model.calib");
        var calibrate = CliHarness.Run("calibrate", model, "-o", stats, "--samples", "16", "--seq-len", "128", "--device", "cpu");
        Assert.True(calibrate.ExitCode == 0, calibrate.Error);

        JsonElement Smooth(string name, params string[] more)
        {
            var run = CliHarness.Run(["smooth", model, "-o", _folder.File(name), "--stats", stats, "--alpha", "auto", "--verify-samples", "4",
                "--verify-length", "128", "--device", "cpu", "--json", .. more]);
            Assert.True(run.ExitCode == 0, run.Error);
            return run.Json();
        }
        var plain = Smooth("plain.onnx");
        var outliers = Smooth("outliers.onnx", "--float-outliers", "6");

        Assert.Equal(6.0, outliers.GetProperty("float_outlier_threshold").GetDouble(), 6);
        var calibration = StatsFile.Read(stats);
        int normFed = 0;
        foreach (var group in outliers.GetProperty("groups").EnumerateArray())
        {
            string activation = group.GetProperty("activation").GetString()!;
            if (group.GetProperty("status").GetString() == "left: not quantized")
                continue; // the LM head's input: the head stays float, nothing is quantized there
            var listed = group.GetProperty("float_channels").EnumerateArray().Select(c => c.GetInt32()).ToArray();
            var absMax = calibration.Get(activation)!.AbsMax;
            var over = Enumerable.Range(0, absMax.Length).Where(j => absMax[j] > 6f).ToArray();
            Assert.True(over.SequenceEqual(listed), $"{activation}: float channels [{string.Join(" ", listed)}], over 6: [{string.Join(" ", over)}]");
            if (group.GetProperty("producer").GetString()!.Contains("RMSNorm", StringComparison.Ordinal))
            {
                // The planted x50 channels are among them.
                Assert.True(listed.Length >= 3, $"{activation}: {listed.Length} float channels");
                normFed++;
            }
        }
        Assert.True(normFed >= 12, $"{normFed} norm-fed groups");

        double Error(JsonElement json) => json.GetProperty("verification").GetProperty("relative_error").GetDouble();
        Assert.True(Error(outliers) < Error(plain), $"relative logits error {Error(outliers):0.0000} with --float-outliers 6, {Error(plain):0.0000} without");
    }

    [Theory]
    [InlineData("--format", "dynamic")]
    [InlineData("--alpha", "none")]
    [InlineData("--no-quantize")]
    public void The_option_is_refused_where_no_float_channels_can_be_emitted(params string[] other)
    {
        string model = Path.Combine(CliHarness.RepoRoot(), "models", "austen-lm", "model.onnx");
        var run = CliHarness.Run(["smooth", model, "-o", _folder.File("x.onnx"), "--float-outliers", "6", .. other]);
        Assert.Equal((int)ExitCode.Usage, run.ExitCode);
        Assert.Contains("--float-outliers", run.Error);
        Assert.False(File.Exists(_folder.File("x.onnx")));
    }
}
