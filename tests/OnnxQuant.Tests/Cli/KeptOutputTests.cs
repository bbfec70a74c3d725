using OnnxQuant.Cli;

namespace OnnxQuant.Tests.Cli;

/// <summary>
/// A written model is never taken back: once `smooth` or `awq` has put its output in place, a held-out check that
/// cannot run is a warning (exit 0, "ran": false with the reason in --json) and an interrupt during it exits 130 with
/// the model kept. (Until #15 both deleted the model; the rule changed on purpose.)
/// </summary>
public sealed class KeptOutputTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private static readonly string[] Small = ["--samples", "4", "--seq-len", "32", "--device", "cpu", "--threads", "1"];

    /// <summary>models/tiny-llama's model in a folder of its own, with or without its tokenizer beside it.</summary>
    private string TinyLlama(bool tokenizer)
    {
        string folder = _temp.File(tokenizer ? "with-tokenizer" : "without-tokenizer");
        Directory.CreateDirectory(folder);
        foreach (var name in tokenizer ? new[] { "model.onnx", "vocab.json", "merges.txt" } : ["model.onnx"])
            File.Copy(Path.Combine(CliHarness.RepoRoot(), "models", "tiny-llama", name), Path.Combine(folder, name));
        return Path.Combine(folder, "model.onnx");
    }

    /// <summary>Token ids to calibrate on, so calibration needs no tokenizer.</summary>
    private string Ids()
    {
        string ids = _temp.File("calib.ids");
        var rng = new Random(3);
        File.WriteAllText(ids, string.Join(" ", Enumerable.Range(0, 256).Select(_ => rng.Next(4096))));
        return ids;
    }

    [Fact]
    public void Smooth_keeps_its_model_and_warns_when_the_held_out_ids_are_too_few_for_one_window()
    {
        string output = _temp.File("q.onnx");
        string held = _temp.File("held.ids");
        File.WriteAllText(held, "5 6 7 8 9 10 11 12");

        var result = CliHarness.Run(["smooth", TinyLlama(tokenizer: false), "--data", Ids(), .. Small, "--verify-data", held, "--json", "-o", output]);

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.True(File.Exists(output), $"{output} was taken back; stderr: {result.Error}");
        Assert.True(new FileInfo(output).Length > 0);
        string flat = string.Join(" ", result.Error.Split('\n').Select(l => l.Trim()));
        Assert.Contains("warning: verification did not run:", flat);
        Assert.Contains("8 tokens, too few for one window of 256", flat);
        Assert.Contains($"{output} was written and is kept", flat);
        Assert.DoesNotContain("error:", result.Error);
        var verification = result.Json().GetProperty("verification");
        Assert.False(verification.GetProperty("ran").GetBoolean());
        Assert.Contains("too few for one window", verification.GetProperty("reason").GetString());
        Assert.False(verification.TryGetProperty("relative_error", out _));
    }

    [Fact]
    public void Awq_refuses_an_empty_held_out_text_before_writing_anything()
    {
        // Held-out data is read before any work, as --data is (issue 25); a verification that fails only after the
        // model is written (too few tokens for a window) keeps it, above.
        string empty = _temp.File("empty.txt");
        File.WriteAllText(empty, "  \n");
        string output = _temp.File("q4.onnx");

        var result = CliHarness.Run("awq", TinyLlama(tokenizer: true), "--method", "rtn", "--verify-data", empty, "-o", output);

        Assert.Equal(3, result.ExitCode);
        Assert.Contains("empty.txt: is empty: there is no text to evaluate on", CliHarness.Flat(result.Error));
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void A_verification_that_runs_reports_ran_true_beside_its_figures()
    {
        string output = _temp.File("q.onnx");

        var result = CliHarness.Run(["smooth", TinyLlama(tokenizer: true), .. Small, "--verify-samples", "2", "--verify-length", "32", "--json", "-o", output]);

        Assert.True(result.ExitCode == 0, result.Error);
        var verification = result.Json().GetProperty("verification");
        Assert.True(verification.GetProperty("ran").GetBoolean());
        Assert.Equal("persuasion.txt", verification.GetProperty("data").GetString());
        Assert.Equal(64, verification.GetProperty("tokens").GetInt64());
        Assert.True(verification.GetProperty("perplexity_emitted").GetDouble() > 1);
        Assert.False(verification.TryGetProperty("reason", out _));
    }

    [Fact]
    public void An_interrupt_during_verification_keeps_the_model_and_exits_130()
    {
        string output = _temp.File("q.onnx");
        using var interrupt = new CancellationTokenSource();
        // Ctrl-C lands exactly when verification starts: the stderr line announcing it fires the token.
        var stderr = new CancelOnLine("verifying on held-out text", interrupt);
        var stdout = new StringWriter();

        int code = CliApp.Run(["smooth", TinyLlama(tokenizer: true), .. Small, "-o", output], stdout, stderr, interrupt.Token);

        string error = stderr.ToString();
        Assert.True(interrupt.IsCancellationRequested, $"verification never started; stderr: {error}");
        Assert.True(code == 130, $"exit {code}; stderr: {error}");
        Assert.Contains($"interrupted during verification; {output} was written and kept.", error);
        Assert.DoesNotContain("nothing was written", error);
        Assert.True(File.Exists(output), $"{output} was taken back");
        Assert.Equal("", stdout.ToString());
    }

    /// <summary>A stderr that cancels <paramref name="source"/> when a line containing <paramref name="text"/> is written.</summary>
    private sealed class CancelOnLine(string text, CancellationTokenSource source) : StringWriter
    {
        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            if (value is not null && value.Contains(text, StringComparison.Ordinal))
                source.Cancel();
        }
    }
}
