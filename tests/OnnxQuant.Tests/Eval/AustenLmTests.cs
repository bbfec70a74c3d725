using System.Text.Json;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Tests.Cli;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Eval;

/// <summary>
/// The C# side (Microsoft.ML.Tokenizers, ONNX Runtime, `onnxquant eval`) against the PyTorch references written at export.
/// The Austen LM is committed (models/austen-lm), so these always run like any other test.
/// </summary>
public class AustenLmTests
{
    private static string Folder => Path.Combine(CliHarness.RepoRoot(), "models", "austen-lm");

    private static string ModelPath => Path.Combine(Folder, "model.onnx");

    private static JsonElement Reference(string file) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, file))).RootElement;

    private static int[] Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32()).ToArray();

    [Fact]
    public void BpeTokenizerIdsEqualThePythonTokenizers()
    {
        var check = Reference("tokenizer_check.json");
        var tokenizer = TokenizerLoader.Load(Folder, Folder);
        Assert.StartsWith("byte-level BPE", tokenizer.Description);
        Assert.Equal(TokenizerLoader.Gpt2Pattern, check.GetProperty("pretokenizer_pattern").GetString());

        var samples = check.GetProperty("samples").EnumerateArray().ToList();
        Assert.Equal(5, samples.Count);
        foreach (var sample in samples)
            Assert.Equal(Ints(sample.GetProperty("ids")), tokenizer.Encode(sample.GetProperty("text").GetString()!).ToArray());
    }

    [Fact]
    public void EvalPerplexityEqualsPyTorchsOnTheFirstEightWindowsOfPersuasion()
    {
        var reference = Reference("reference_logits.json");
        double expected = reference.GetProperty("perplexity_8x256").GetDouble();

        var result = CliHarness.Run("eval", ModelPath, "--context", "256", "--stride", "256", "--max-tokens", "2048", "--device", "cpu", "--json");

        // stderr carries only progress lines: no warning, no error.
        Assert.True(result.ExitCode == 0, result.Error);
        Assert.DoesNotContain("warning", result.Error);
        Assert.DoesNotContain("error", result.Error);
        var p = result.Json().GetProperty("perplexity");
        Assert.Equal((8, 2040L), (p.GetProperty("windows").GetInt32(), p.GetProperty("scored_tokens").GetInt64()));
        double actual = p.GetProperty("perplexity").GetDouble();
        Assert.True(Math.Abs(actual / expected - 1) < 1e-4, $"ORT perplexity {actual} vs PyTorch {expected}");

        // The same tokens: the C# tokenization of all of Persuasion starts with PyTorch's eight windows.
        var stream = TokenizerLoader.Load(null, ModelPath).Encode(File.ReadAllText(Path.Combine(CliHarness.RepoRoot(), "models", "text", "persuasion.txt")));
        var windows = reference.GetProperty("windows_8x256").EnumerateArray().SelectMany(Ints).ToArray();
        Assert.Equal(windows, stream.Take(2048).ToArray());
    }

    [Fact]
    public void OrtLogitsEqualPyTorchsOnThe64TokenProbe()
    {
        var reference = Reference("reference_logits.json");
        var ids = Ints(reference.GetProperty("input_ids"));
        Assert.Equal(64, ids.Length);

        using var runner = EvalTestData.Runner(ModelPath);
        var logits = EvalTestData.Logits(runner, ids);
        int vocab = logits.Length / ids.Length;

        Assert.Equal(4096, vocab);
        double firstRowSum = logits.AsSpan(0, vocab).ToArray().Sum(v => (double)v);
        double expectedSum = reference.GetProperty("logits_first_row_sum").GetDouble();
        Assert.True(Math.Abs(firstRowSum - expectedSum) <= 1e-4 * Math.Abs(expectedSum), $"first-row sum {firstRowSum} vs {expectedSum}");
        var first5 = reference.GetProperty("logits_first_row_first5").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        for (int i = 0; i < 5; i++)
            Assert.Equal(first5[i], logits[i], 1e-4 * Math.Max(1, Math.Abs(first5[i])));
        var last = logits.AsSpan((ids.Length - 1) * vocab, vocab).ToArray();
        var top5 = Enumerable.Range(0, vocab).OrderByDescending(i => last[i]).Take(5).ToArray();
        Assert.Equal(Ints(reference.GetProperty("logits_last_token_top5")), top5);
    }
}
