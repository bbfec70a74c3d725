using OnnxQuant.Fixtures;
using OnnxQuant.Tests.Cli;
using OnnxQuant.Tests.Fixtures;

namespace OnnxQuant.Tests.Security;

/// <summary>Issue 25: option values checked before any work — negative counts, held-out ids beyond the vocabulary.</summary>
public sealed class NumericOptionTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("calibrate", "--threads", "-5")]
    [InlineData("smooth", "--threads", "-5")]
    [InlineData("awq", "--threads", "-5")]
    [InlineData("advise", "--threads", "-5")]
    [InlineData("eval", "--threads", "-5")]
    [InlineData("smooth", "--latency", "-1")]
    [InlineData("awq", "--latency", "-1")]
    public void A_negative_count_is_refused_naming_the_option(string command, string option, string value)
    {
        string model = FixtureModels.Save(new FixtureOptions { Family = FixtureFamily.TorchLlama, Layers = 1, Hidden = 64, Heads = 4, Intermediate = 128, Vocab = 128, Seed = 7 }, _temp.Path);
        var before = _temp.FileNames();
        var run = CliHarness.Run(command, model, option, value, "--device", "cpu");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains($"{option} must be at least 0 (got {value})", run.Error);
        Assert.Equal(before, _temp.FileNames());   // nothing written
    }

    [Fact]
    public void Held_out_ids_beyond_the_vocabulary_are_refused_before_the_model_is_written()
    {
        var options = new FixtureOptions { Family = FixtureFamily.TorchLlama, Layers = 1, Hidden = 64, Heads = 4, Intermediate = 128, Vocab = 128, Seed = 7 };
        string model = FixtureModels.Save(options, _temp.Path);
        string held = _temp.File("held.ids");
        File.WriteAllText(held, string.Join(" ", Enumerable.Range(0, 300).Select(i => i == 200 ? 5000 : i % 128)));
        var run = CliHarness.Run("awq", model, "--method", "rtn", "--verify-data", held, "-o", _temp.File("out.onnx"));
        Assert.Equal(3, run.ExitCode);
        Assert.Contains("token id 5000 (id 201 of it) is not below the vocabulary", CliHarness.Flat(run.Error));
        Assert.Contains("--verify-data", run.Error);
        Assert.False(File.Exists(_temp.File("out.onnx")));
    }
}
