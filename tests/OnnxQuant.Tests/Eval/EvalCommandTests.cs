using OnnxQuant.IO;
using OnnxQuant.Fixtures;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.Eval;

public class EvalCommandTests
{
    [Fact]
    public void JsonCarriesPerplexityWindowsAndLatencyOfBothModels()
    {
        using var folder = new TempFolder();
        string model = FixtureModels.Save(EvalTestData.Lm(0), folder.Path, "a.onnx");
        string other = FixtureModels.Save(EvalTestData.Lm(2), folder.Path, "b.onnx");
        string text = EvalTestData.PersuasionExcerpt(folder, 6000);

        var result = CliHarness.Run("eval", model, "--data", text, "--tokenizer", EvalTestData.AustenTokenizer, "--reference", other,
            "--context", "128", "--stride", "64", "--max-tokens", "600", "--latency", "256", "--latency-runs", "3", "--device", "cpu", "--json");

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.DoesNotContain("error", result.Error);
        var json = result.Json();
        Assert.Equal("CausalLm", json.GetProperty("kind").GetString());
        Assert.Equal("text.txt", json.GetProperty("data").GetString());
        var p = json.GetProperty("perplexity");
        // Windows start at 0, 64, ... 448 (448 + 128 = 576 <= 600); tokens 1..575 are scored.
        Assert.Equal((8, 575L, 600), (p.GetProperty("windows").GetInt32(), p.GetProperty("scored_tokens").GetInt64(), p.GetProperty("stream_tokens").GetInt32()));
        double ppl = p.GetProperty("perplexity").GetDouble(), reference = p.GetProperty("reference_perplexity").GetDouble();
        Assert.Equal(ppl / reference - 1, p.GetProperty("relative_increase").GetDouble(), 12);
        var l = json.GetProperty("latency");
        Assert.Equal(256, l.GetProperty("prefill_tokens").GetInt32());
        // 256 tokens through a 4096-wide LM head cost far more than one token.
        Assert.True(l.GetProperty("prefill_ms").GetDouble() > l.GetProperty("step_ms").GetDouble());
        Assert.True(l.GetProperty("reference_prefill_ms").GetDouble() > l.GetProperty("reference_step_ms").GetDouble());
    }

    [Fact]
    public void ARedirectedStderrShowsWhatIsEvaluatedAndALinePerTenthOfTheWindows()
    {
        using var folder = new TempFolder();
        string model = FixtureModels.Save(EvalTestData.Lm(0), folder.Path, "a.onnx");
        string text = EvalTestData.PersuasionExcerpt(folder, 6000);

        var result = CliHarness.Run("eval", model, "--data", text, "--tokenizer", EvalTestData.AustenTokenizer,
            "--context", "64", "--max-tokens", "1280", "--device", "cpu", "--json");

        Assert.True(result.ExitCode == 0, result.Error);
        var lines = result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        // The first line comes before tokenizing, so a long text is never silent; then 20 windows, a line per tenth.
        Assert.Equal($"evaluating {model} on text.txt", lines[0]);
        var progress = lines.Skip(1).Where(l => l.StartsWith("  evaluating: ")).ToList();
        Assert.Equal(new[] { 1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20 }.Select(i => $"  evaluating: {i}/20"), progress);
        Assert.Equal(20, result.Json().GetProperty("perplexity").GetProperty("windows").GetInt32());
    }

    // Issue 11, failure 4: the task comes from the graph, not from an output named "logits"; --task overrides it.
    [Fact]
    public void Eval_measures_perplexity_of_a_causal_lm_whose_logits_are_not_named_logits_and_task_overrides_it()
    {
        using var folder = new TempFolder();
        string model = folder.File("renamed.onnx");
        ModelFile.Save(OnnxModel.FromProto(EvalTestData.RenamedLm(symbolicVocab: true)), model);
        string text = EvalTestData.PersuasionExcerpt(folder, 3000);
        string[] common = ["eval", model, "--data", text, "--tokenizer", EvalTestData.AustenTokenizer, "--context", "64", "--max-tokens", "256", "--device", "cpu"];

        var result = CliHarness.Run([.. common, "--json"]);

        Assert.True(result.ExitCode == 0, result.Error);
        var json = result.Json();
        Assert.Equal(("CausalLm", "output"), (json.GetProperty("kind").GetString(), json.GetProperty("output").GetString()));
        // An untrained 4096-token LM is near-uniform: its perplexity is of the order of the vocabulary.
        Assert.InRange(json.GetProperty("perplexity").GetProperty("perplexity").GetDouble(), 1000, 20000);

        var forced = CliHarness.Run([.. common, "--task", "encoder"]);

        Assert.Equal((int)ExitCode.Usage, forced.ExitCode);
        Assert.Contains("is measured as an encoder", forced.Error);
        Assert.Contains("--reference", forced.Error);
    }

    [Fact]
    public void AnEncoderWithoutAReferenceIsAUsageErrorThatNamesTheOption()
    {
        using var folder = new TempFolder();
        string model = FixtureModels.Save(EvalTestData.Bert(0), folder.Path);
        EvalTestData.WriteLetterVocab(folder.Path);
        string text = EvalTestData.PersuasionExcerpt(folder, 2000);

        var result = CliHarness.Run("eval", model, "--data", text, "--device", "cpu");

        Assert.Equal((int)ExitCode.Usage, result.ExitCode);
        Assert.Contains("--reference", result.Error);
        Assert.Equal("", result.Out);
    }

    [Theory]
    [InlineData("--stride", "300", ExitCode.Usage, "--stride")]
    [InlineData("--context", "1", ExitCode.Usage, "--context")]
    [InlineData("--data", "no-such-text.txt", ExitCode.BadInput, "no-such-text.txt")]
    public void BadOptionsAndMissingFilesGiveTheirExitCodes(string option, string value, ExitCode expected, string named)
    {
        using var folder = new TempFolder();
        string model = FixtureModels.Save(EvalTestData.Lm(0), folder.Path);
        string text = EvalTestData.PersuasionExcerpt(folder, 2000);
        var args = new List<string> { "eval", model, "--tokenizer", EvalTestData.AustenTokenizer, "--device", "cpu" };
        if (option != "--data") args.AddRange(["--data", text]);
        args.AddRange([option, option == "--data" ? folder.File(value) : value]);

        var result = CliHarness.Run([.. args]);

        Assert.Equal((int)expected, result.ExitCode);
        Assert.Contains(named, result.Error);
    }
}
