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

        Assert.Equal((0, ""), (result.ExitCode, result.Error));
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
