using OnnxQuant.Cli;
using OnnxQuant.Fixtures;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Cli;

/// <summary>Failures that say what happened and cost nothing: already-quantized models, typos in --exclude, --json errors, huge figures.</summary>
public sealed class HonestFailureTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private static readonly FixtureOptions Options =
        new() { Family = FixtureFamily.TorchLlama, Layers = 1, Hidden = 32, Heads = 2, Intermediate = 64, Vocab = 64, Seed = 2 };

    private string Ids() => _temp.RandomIds(Options.Vocab, seed: 1);

    [Fact]
    public void An_already_quantized_model_is_refused_before_any_calibration()
    {
        string model = FixtureModels.Save(Options, _temp.Path);
        string w4 = _temp.File("w4.onnx");
        var rtn = CliHarness.Run("awq", model, "--method", "rtn", "--group-size", "32", "--include-lm-head", "--no-verify", "-o", w4);
        Assert.Equal(0, rtn.ExitCode);

        var again = CliHarness.Run("smooth", w4, "--data", Ids(), "--samples", "4", "--seq-len", "16", "--no-verify", "-o", _temp.File("again.onnx"));
        Assert.Equal((int)ExitCode.Unsupported, again.ExitCode);
        Assert.Contains("is already quantized", again.Error);
        Assert.DoesNotContain("calibrating", again.Error);
        Assert.False(File.Exists(_temp.File("again.onnx")));
    }

    [Fact]
    public void A_partly_quantized_model_has_only_its_float_linears_quantized()
    {
        string model = FixtureModels.Save(Options, _temp.Path);
        string partly = _temp.File("partly.onnx");
        // 4-bit everywhere but the MLP: 4 MatMulNBits, 3 float MLP linears (and the float head) remain.
        var first = CliHarness.Run("awq", model, "--method", "rtn", "--group-size", "32", "--exclude", "*mlp*", "--no-verify", "-o", partly);
        Assert.Equal(0, first.ExitCode);

        var second = CliHarness.Run("smooth", partly, "--alpha", "none", "--format", "dynamic", "--no-verify", "--json", "-o", _temp.File("both.onnx"));
        Assert.True(second.ExitCode == 0, second.Error);
        Assert.Contains("is partly quantized: 4 linear(s) already quantized are kept as they are; 3 float linear(s) will be quantized", second.Error.Replace("\n", " "));
        Assert.Equal(3, second.Json().GetProperty("linears_quantized").GetInt32());
        using var both = OnnxQuant.IO.ModelFile.Load(_temp.File("both.onnx"));
        Assert.Equal(4, both.Graph.Nodes.Count(n => n.OpType == "MatMulNBits"));
        Assert.Equal(3, both.Graph.Nodes.Count(n => n.OpType == "MatMulInteger"));
    }

    [Fact]
    public void An_exclude_pattern_that_matches_nothing_is_reported()
    {
        string model = FixtureModels.Save(Options, _temp.Path);
        var run = CliHarness.Run("awq", model, "--method", "rtn", "--group-size", "32", "--exclude", "*q_porj*", "--exclude", "*down_proj*", "--no-verify", "--json", "-o", _temp.File("x.onnx"));
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("warning: --exclude '*q_porj*' matches no MatMul or Gemm", run.Error);
        Assert.DoesNotContain("'*down_proj*' matches no", run.Error);
        Assert.Contains(run.Json().GetProperty("kept").EnumerateArray(), k => k.GetProperty("code").GetString() == "ExcludedByPattern");
    }

    [Fact]
    public void A_failing_command_with_json_prints_the_error_document_on_stdout()
    {
        var run = CliHarness.Run("smooth", _temp.File("missing.onnx"), "--json");
        Assert.Equal((int)ExitCode.BadInput, run.ExitCode);
        var json = run.Json();
        Assert.Equal(3, json.GetProperty("exit").GetInt32());
        Assert.Equal("BadInput", json.GetProperty("error").GetProperty("kind").GetString());
        Assert.Contains("missing.onnx", json.GetProperty("error").GetProperty("file").GetString());
        Assert.Contains("missing.onnx", run.Error);
    }

    [Theory]
    [InlineData(77.3781, "0.000", "77.378")]
    [InlineData(999999.4, "0.000", "999999.400")]
    [InlineData(3.1415e45, "0.000", "3.142e+45")]
    [InlineData(2.5e6, "0.00", "2.5e+6")]
    public void Huge_figures_print_in_scientific_notation(double value, string format, string expected) =>
        Assert.Equal(expected, Format.Figure(value, format));
}
