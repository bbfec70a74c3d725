namespace OnnxQuant.Tests.Cli;

/// <summary>
/// Issue 11, failure 3: a model without a tokenizer quantizes and verifies on token ids alone (--data and --verify-data
/// take the same formats), and when only the calibration data is ids the missing tokenizer is reported before any work.
/// </summary>
public sealed class IdsOnlyWorkflowTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private static readonly string[] Small = ["--samples", "4", "--seq-len", "32", "--device", "cpu", "--threads", "1"];

    /// <summary>models/tiny-llama's model alone in a folder: no tokenizer beside it.</summary>
    private string ModelWithoutTokenizer()
    {
        string folder = _temp.File("model");
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(CliHarness.RepoRoot(), "models", "tiny-llama", "model.onnx"), Path.Combine(folder, "model.onnx"));
        return Path.Combine(folder, "model.onnx");
    }

    private string Ids(string name, int count, int seed)
    {
        string path = _temp.File(name);
        var rng = new Random(seed);
        File.WriteAllText(path, string.Join(" ", Enumerable.Range(0, count).Select(_ => rng.Next(4096))));
        return path;
    }

    [Fact]
    public void Smooth_verifies_on_held_out_ids_without_a_tokenizer()
    {
        string output = _temp.File("q.onnx");
        string held = _temp.File("held.jsonl");
        var rng = new Random(9);
        File.WriteAllLines(held, Enumerable.Range(0, 2).Select(_ => $"{{\"input_ids\": [{string.Join(", ", Enumerable.Range(0, 40).Select(_ => rng.Next(4096)))}]}}"));

        var result = CliHarness.Run(["smooth", ModelWithoutTokenizer(), "--data", Ids("calib.ids", 256, 3), .. Small,
            "--verify-data", held, "--verify-samples", "2", "--verify-length", "32", "--json", "-o", output]);

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.DoesNotContain("warning", result.Error);
        var verification = result.Json().GetProperty("verification");
        Assert.True(verification.GetProperty("ran").GetBoolean(), verification.ToString());
        Assert.Equal("held.jsonl", verification.GetProperty("data").GetString());
        Assert.Equal("CausalLm", verification.GetProperty("kind").GetString());
        // 80 ids make two windows of 32.
        Assert.Equal(64, verification.GetProperty("tokens").GetInt64());
        // Random ids are far from anything the model saw, so the error is large but finite and measured.
        Assert.InRange(verification.GetProperty("relative_error").GetDouble(), 1e-6, 1);
        Assert.True(verification.GetProperty("perplexity_emitted").GetDouble() > 1);
    }

    [Fact]
    public void Calibrating_on_ids_without_a_tokenizer_or_held_out_ids_is_refused_before_any_work()
    {
        string output = _temp.File("q4.onnx");

        var result = CliHarness.Run(["awq", ModelWithoutTokenizer(), "--data", Ids("calib.ids", 256, 3), .. Small, "-o", output]);

        Assert.Equal((int)ExitCode.Usage, result.ExitCode);
        Assert.DoesNotContain("calibrating", result.Error);
        Assert.False(File.Exists(output));
        string flat = string.Join(" ", result.Error.Split('\n').Select(l => l.Trim()));
        Assert.Contains("has no tokenizer beside it", flat);
        Assert.Contains("verification reads the default held-out text (Persuasion)", flat);
        Assert.Contains("--verify-data", flat);
        Assert.Contains("--no-verify", flat);
    }
}
