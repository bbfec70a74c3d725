using System.Text.Json;
using OnnxQuant.Cli;
using OnnxQuant.Tests.Smoothing;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.W8A8;

/// <summary>`onnxquant smooth` in-process on models/austen-lm (a real causal LM with its tokenizer), small settings.</summary>
public class SmoothCommandTests
{
    private static string AustenLm => Path.Combine(CliHarness.RepoRoot(), "models", "austen-lm", "model.onnx");

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static string[] Small(string output, params string[] more) =>
        ["smooth", AustenLm, "-o", output, "--samples", "16", "--seq-len", "128", "--verify-samples", "2", "--verify-length", "64", "--device", "cpu", "--threads", "1", "--json", .. more];

    [Fact]
    public void DefaultsQuantizeEveryLinearButTheLmHeadAndVerifyOnPersuasion()
    {
        using var folder = new TempFolder();
        string output = folder.File("austen.sq.onnx");
        var (code, stdout, stderr) = Run(Small(output));
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        var root = json.RootElement;
        Assert.Equal("int8", root.GetProperty("format").GetString());
        Assert.Equal("auto", root.GetProperty("alpha").GetString());
        Assert.Equal(42, root.GetProperty("linears_quantized").GetInt32());
        // Every MatMul is accounted for: 42 quantized, the head kept, and 6 layers x 2 attention products (no constant weight).
        var kept = root.GetProperty("linears_kept").EnumerateArray().ToList();
        Assert.Equal(55, root.GetProperty("linears").GetInt32());
        Assert.Equal(13, kept.Count);
        Assert.Equal("/model/lm_head/MatMul", Assert.Single(kept, k => k.GetProperty("code").GetString() == "LmHead").GetProperty("name").GetString());
        Assert.Equal(12, kept.Count(k => k.GetProperty("code").GetString() == "ComputedWeight"));
        var groups = root.GetProperty("groups").EnumerateArray().ToList();
        Assert.Equal(25, groups.Count);
        Assert.Equal(24, groups.Count(g => g.GetProperty("status").GetString() is "folded"));
        var verification = root.GetProperty("verification");
        double before = verification.GetProperty("perplexity_original").GetDouble(), after = verification.GetProperty("perplexity_emitted").GetDouble();
        double agreement = verification.GetProperty("top1_agreement").GetDouble();
        Assert.True(after / before is > 0.97 and < 1.03 && agreement is > 0.9 and < 1.0, $"perplexity {before:F3} -> {after:F3}, top-1 agreement {agreement:P2}");
        Assert.True(File.Exists(output));
        Assert.True(root.GetProperty("output_bytes").GetInt64() * 3 < root.GetProperty("input_bytes").GetInt64() * 2, "int8 weights should shrink the model");
    }

    [Fact]
    public void NoQuantizeWritesAnExactlySmoothedFloatModel()
    {
        using var folder = new TempFolder();
        string output = folder.File("austen.smoothed.onnx");
        var (code, stdout, stderr) = Run(Small(output, "--no-quantize", "--alpha", "0.5"));
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        var root = json.RootElement;
        Assert.Equal(JsonValueKind.Null, root.GetProperty("format").ValueKind);
        Assert.Equal(0, root.GetProperty("linears_quantized").GetInt32());
        var verification = root.GetProperty("verification");
        Assert.True(verification.GetProperty("relative_error").GetDouble() < 1e-5);
        Assert.Equal(1.0, verification.GetProperty("top1_agreement").GetDouble());
    }

    [Fact]
    public void WritingOverTheInputOrABadAlphaIsAUsageError()
    {
        var (code, _, stderr) = Run("smooth", AustenLm, "-o", AustenLm, "--no-verify");
        Assert.Equal(2, code);
        Assert.Contains("is the input model", stderr);
        (code, _, stderr) = Run("smooth", AustenLm, "--alpha", "1.5", "--no-verify");
        Assert.Equal(2, code);
        Assert.Contains("--alpha", stderr);
    }

    [Fact]
    public void TheDefaultOutputIsBesideTheInputAndNeverTheInput()
    {
        Assert.Equal(Path.Combine("/m", "model.sq.onnx"), SmoothCommand.DefaultOutput("/m/model.onnx", quantize: true));
        Assert.Equal(Path.Combine("/m", "model.smoothed.onnx"), SmoothCommand.DefaultOutput("/m/model.onnx", quantize: false));
    }
}
