using OnnxQuant.Fixtures;
using OnnxQuant.Tests.Cli;
using OnnxQuant.Tests.Fixtures;

namespace OnnxQuant.Tests.Security;

/// <summary>Issue 25: a negative thread count or latency length is a usage error in every command, before any work.</summary>
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
}
