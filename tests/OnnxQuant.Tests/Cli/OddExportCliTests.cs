using OnnxQuant.Cli;
using OnnxQuant.Fixtures;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Cli;

/// <summary>Issue 31, items 4 and 5: already-quantized inputs named as such, --exclude before the model path, float inputs pointed at .npz.</summary>
public sealed class OddExportCliTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private static readonly FixtureOptions Options =
        new() { Family = FixtureFamily.TorchLlama, Layers = 1, Hidden = 32, Heads = 2, Intermediate = 64, Vocab = 64, Seed = 2 };

    private string Ids() => _temp.RandomIds(Options.Vocab, seed: 1);

    [Fact]
    public void A_w8a8_model_whose_head_stayed_float_is_refused_as_already_quantized_naming_what_was_found()
    {
        string model = FixtureModels.Save(Options, _temp.Path);
        string w8 = _temp.File("w8.onnx");
        Assert.Equal(0, CliHarness.Run("smooth", model, "--alpha", "none", "--format", "dynamic", "--no-verify", "-o", w8).ExitCode);

        var again = CliHarness.Run("smooth", w8, "--data", Ids(), "--samples", "4", "--seq-len", "16", "--no-verify", "-o", _temp.File("again.onnx"));

        Assert.Equal((int)ExitCode.Unsupported, again.ExitCode);
        string error = CliHarness.Flat(again.Error);
        // 7 linears of one layer quantized: q, k, v, o, gate, up, down; the LM head kept in float.
        Assert.Contains("is already quantized: it has 7 MatMulInteger", error);
        Assert.Contains("1 LM head", error);
        Assert.False(File.Exists(_temp.File("again.onnx")));
    }

    [Fact]
    public void Smoothing_without_quantizing_a_quantized_model_is_refused_before_calibration()
    {
        string model = FixtureModels.Save(Options, _temp.Path);
        string w4 = _temp.File("w4.onnx");
        Assert.Equal(0, CliHarness.Run("awq", model, "--method", "rtn", "--group-size", "32", "--no-verify", "-o", w4).ExitCode);

        var smooth = CliHarness.Run("smooth", w4, "--no-quantize", "--data", Ids(), "--samples", "4", "--seq-len", "16", "--no-verify", "-o", _temp.File("copy.onnx"));

        Assert.Equal((int)ExitCode.Unsupported, smooth.ExitCode);
        Assert.Contains("is already quantized: it has 7 MatMulNBits", CliHarness.Flat(smooth.Error));
        Assert.DoesNotContain("calibrat", smooth.Error);
        Assert.False(File.Exists(_temp.File("copy.onnx")));
    }

    [Fact]
    public void Exclude_takes_one_pattern_so_the_model_path_may_follow_it()
    {
        string model = FixtureModels.Save(Options, _temp.Path);
        string output = _temp.File("out.onnx");

        var run = CliHarness.Run("smooth", "--exclude", "*mlp*", model, "--alpha", "none", "--format", "dynamic", "--no-verify", "--json", "-o", output);

        Assert.True(run.ExitCode == 0, run.Error);
        // 7 linears, 3 of them in the MLP: 4 quantized.
        Assert.Equal(4, run.Json().GetProperty("linears_quantized").GetInt32());
    }

    [Fact]
    public void A_model_with_float_inputs_calibrated_on_text_is_pointed_at_npz_arrays()
    {
        string model = FixtureModels.Save(new FixtureOptions { Family = FixtureFamily.Vit, Layers = 1, Hidden = 32, Heads = 2, Intermediate = 64, Vocab = 16 }, _temp.Path);

        var run = CliHarness.Run("smooth", model, "--samples", "4", "--seq-len", "16", "--no-verify", "-o", _temp.File("out.onnx"));

        Assert.True(run.ExitCode == (int)ExitCode.Usage, run.Error);
        string error = CliHarness.Flat(run.Error);
        Assert.Contains("takes no token ids but floating-point inputs ('pixel_values' float32)", error);
        Assert.Contains("--data x.npz", error);
        Assert.DoesNotContain("calibrating", error);
    }
}
