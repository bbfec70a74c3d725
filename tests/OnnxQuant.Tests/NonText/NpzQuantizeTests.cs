using OnnxQuant.Fixtures;
using OnnxQuant.Tests.Cli;
using Xunit.Abstractions;

namespace OnnxQuant.Tests.NonText;

/// <summary>
/// A model that takes no text (a ViT-like encoder fed float pixel_values) is calibrated and verified from .npz arrays
/// named after its inputs, by `smooth` (int8 and dynamic) and `awq`.
/// </summary>
public sealed class NpzQuantizeTests(ITestOutputHelper log) : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private static readonly FixtureOptions Vit = new()
    {
        Family = FixtureFamily.Vit, Layers = 2, Hidden = 64, Heads = 4, Intermediate = 128, Vocab = 48, MaxPositions = 16, OutlierChannels = 3, Seed = 5,
    };

    /// <summary>A .npz of <paramref name="samples"/> images of 12 patches x 48 values.</summary>
    private string Pixels(string name, int samples, int seed)
    {
        string path = _temp.File(name);
        Npy.WriteNpz(path, ("pixel_values", Npy.Floats([samples, 12, Vit.Vocab], Npy.Random(samples * 12 * Vit.Vocab, seed))));
        return path;
    }

    [Theory]
    [InlineData("smooth", "int8")]
    [InlineData("smooth", "dynamic")]
    [InlineData("awq", null)]
    public void A_vit_like_encoder_quantizes_from_npz_and_verifies_on_held_out_arrays(string command, string? format)
    {
        string model = FixtureModels.Save(Vit, _temp.Path);
        string output = _temp.File($"{command}-{format}.onnx");
        var args = new List<string> { command, model, "--data", Pixels("calib.npz", 8, 1), "--verify-data", Pixels("held.npz", 4, 2),
            "--device", "cpu", "--threads", "1", "--json", "-o", output };
        if (format is not null)
            args.AddRange(["--format", format]);
        if (command == "awq")
            args.AddRange(["--group-size", "32"]);

        var result = CliHarness.Run([.. args]);

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains("calibrating on calib.npz: 8 samples of arrays", result.Error);
        var json = result.Json();
        var quantized = json.TryGetProperty("quantized_linears", out var q) ? q : json.GetProperty("linears_quantized");
        Assert.True(quantized.GetInt32() >= 12, json.ToString());
        var verification = json.GetProperty("verification");
        Assert.True(verification.GetProperty("ran").GetBoolean(), verification.ToString());
        Assert.Equal(("held.npz", "Encoder", "last_hidden_state"),
            (verification.GetProperty("data").GetString(), verification.GetProperty("kind").GetString(), verification.GetProperty("output").GetString()));
        Assert.Equal(4, verification.GetProperty("samples").GetInt32());
        double error = verification.GetProperty("relative_error").GetDouble();
        log.WriteLine($"{command} {format}: relative error {error:F4}, mean cosine {verification.GetProperty("mean_cosine").GetDouble():F5}");
        // Random pixels keep every channel busy, so the error is above a trained model's; measured figures are logged.
        Assert.InRange(error, 1e-5, command == "awq" ? 0.15 : 0.08);
        Assert.True(verification.GetProperty("mean_cosine").GetDouble() > 0.98);
    }

    [Fact]
    public void Calibrating_on_npz_without_held_out_arrays_is_refused_before_any_work()
    {
        string model = FixtureModels.Save(Vit, _temp.Path);

        var result = CliHarness.Run("smooth", model, "--data", Pixels("calib.npz", 8, 1), "--device", "cpu", "-o", _temp.File("q.onnx"));

        Assert.Equal((int)ExitCode.Usage, result.ExitCode);
        Assert.DoesNotContain("calibrating", result.Error);
        Assert.Contains("--verify-data", result.Error);
        Assert.Contains("--no-verify", result.Error);
        Assert.False(File.Exists(_temp.File("q.onnx")));
    }

    [Fact]
    public void A_npz_without_an_array_for_a_model_input_names_both()
    {
        string model = FixtureModels.Save(Vit, _temp.Path);
        string wrong = _temp.File("wrong.npz");
        Npy.WriteNpz(wrong, ("images", Npy.Floats([2, 12, Vit.Vocab], Npy.Random(2 * 12 * Vit.Vocab, 1))));

        var result = CliHarness.Run("smooth", model, "--data", wrong, "--no-verify", "--device", "cpu", "-o", _temp.File("q.onnx"));

        Assert.Equal((int)ExitCode.BadInput, result.ExitCode);
        string flat = string.Join(" ", result.Error.Split('\n').Select(l => l.Trim()));
        Assert.Contains("has no array for model input(s) 'pixel_values'", flat);
        Assert.Contains("it holds 'images'", flat);
    }
}
