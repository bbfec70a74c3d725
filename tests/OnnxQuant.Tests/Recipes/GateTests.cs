using System.Globalization;
using System.Text.Json;
using OnnxQuant.Tests.Cli;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Recipes;

/// <summary>
/// Accuracy gates: measured first, then a bound just on the passing side passes and one just on the failing side exits 6
/// with the figure against the bound, keeps the model and reports the verdict in --json. Gates that cannot be measured
/// are usage errors before any work.
/// </summary>
public sealed class GateTests
{
    private static string TinyLlama => Path.Combine(CliHarness.RepoRoot(), "models", "tiny-llama", "model.onnx");

    // RTN needs no calibration: the quickest quantization to gate.
    private static readonly string[] Rtn = ["--method", "rtn", "--group-size", "32", "--verify-samples", "2", "--verify-length", "64", "--device", "cpu", "--json"];

    private static string Text(double x) => x.ToString("R", CultureInfo.InvariantCulture);

    [Theory]
    [InlineData("--min-top1")]
    [InlineData("--max-ppl-increase")]
    public void A_causal_lm_gate_passes_just_above_the_measured_figure_and_fails_just_below(string gate)
    {
        using var temp = new TempFolder();
        var measuredRun = CliHarness.Run(["awq", TinyLlama, "-o", temp.File("m.onnx"), .. Rtn]);
        Assert.True(measuredRun.ExitCode == 0, measuredRun.Error);
        var v = measuredRun.Json().GetProperty("verification");
        double measured = gate == "--min-top1"
            ? v.GetProperty("top1_agreement").GetDouble() * 100
            : (v.GetProperty("perplexity_emitted").GetDouble() / v.GetProperty("perplexity_original").GetDouble() - 1) * 100;
        double margin = Math.Max(Math.Abs(measured) * 1e-6, 1e-9);
        double passing = gate == "--min-top1" ? measured - margin : measured + margin;
        double failing = gate == "--min-top1" ? measured + margin : measured - margin;

        var pass = CliHarness.Run(["awq", TinyLlama, "-o", temp.File("pass.onnx"), .. Rtn, gate, Text(passing)]);
        Assert.True(pass.ExitCode == 0, pass.Error);
        var passed = pass.Json().GetProperty("gates")[0];
        Assert.True(passed.GetProperty("passed").GetBoolean());
        Assert.Equal(measured, passed.GetProperty("measured").GetDouble(), 9);

        var fail = CliHarness.Run(["awq", TinyLlama, "-o", temp.File("fail.onnx"), .. Rtn, gate, Text(failing)]);
        Assert.Equal(6, fail.ExitCode);
        var failed = fail.Json().GetProperty("gates")[0];
        Assert.False(failed.GetProperty("passed").GetBoolean());
        Assert.Equal(gate, failed.GetProperty("option").GetString());
        Assert.Equal(failing, failed.GetProperty("bound").GetDouble());
        Assert.Contains($"{gate}: measured", fail.Error);
        Assert.True(File.Exists(temp.File("fail.onnx")), "a failed gate keeps the written model");
    }

    [ArtifactFact(Artifact.MiniLm)]
    public void The_cosine_gate_holds_an_encoder_to_its_measured_embedding_cosine()
    {
        using var temp = new TempFolder();
        string[] rtn = ["--method", "rtn", "--verify-samples", "16", "--device", "cpu", "--json"];
        var measuredRun = CliHarness.Run(["awq", RequiredArtifact.MiniLmModel, "-o", temp.File("m.onnx"), .. rtn]);
        Assert.True(measuredRun.ExitCode == 0, measuredRun.Error);
        double cosine = measuredRun.Json().GetProperty("verification").GetProperty("mean_cosine").GetDouble();

        var pass = CliHarness.Run(["awq", RequiredArtifact.MiniLmModel, "-o", temp.File("pass.onnx"), .. rtn, "--min-cosine", Text(cosine - 1e-9)]);
        Assert.True(pass.ExitCode == 0, pass.Error);
        var fail = CliHarness.Run(["awq", RequiredArtifact.MiniLmModel, "-o", temp.File("fail.onnx"), .. rtn, "--min-cosine", Text(cosine + 1e-9)]);
        Assert.Equal(6, fail.ExitCode);
        Assert.Equal(cosine, fail.Json().GetProperty("gates")[0].GetProperty("measured").GetDouble(), 12);
    }

    [Fact]
    public void Eval_gates_its_comparison_with_the_reference()
    {
        using var temp = new TempFolder();
        string quantized = temp.File("q.onnx");
        Assert.Equal(0, CliHarness.Run(["awq", TinyLlama, "-o", quantized, "--method", "rtn", "--no-verify"]).ExitCode);
        string[] eval = ["eval", quantized, "--reference", TinyLlama, "--max-tokens", "400", "--context", "64", "--device", "cpu", "--json"];
        var measuredRun = CliHarness.Run(eval);
        Assert.True(measuredRun.ExitCode == 0, measuredRun.Error);
        double top1 = measuredRun.Json().GetProperty("perplexity").GetProperty("top1_agreement").GetDouble() * 100;

        Assert.Equal(0, CliHarness.Run([.. eval, "--min-top1", Text(top1 - 1e-6)]).ExitCode);
        var fail = CliHarness.Run([.. eval, "--min-top1", Text(top1 + 1e-6)]);
        Assert.Equal(6, fail.ExitCode);
        Assert.False(fail.Json().GetProperty("gates")[0].GetProperty("passed").GetBoolean());
    }

    public static TheoryData<string[], string> Unmeasurable => new()
    {
        { ["awq", "MODEL", "--method", "rtn", "--no-verify", "--min-top1", "50"], "--no-verify" },
        { ["awq", "MODEL", "--method", "rtn", "--min-cosine", "0.9"], "--min-cosine" },
        { ["eval", "MODEL", "--max-ppl-increase", "5"], "--reference" },
        { ["smooth", "MODEL", "--min-top1", "101"], "--min-top1" },
    };

    [Theory]
    [MemberData(nameof(Unmeasurable))]
    public void A_gate_that_cannot_be_measured_is_a_usage_error_before_any_work(string[] args, string named)
    {
        using var temp = new TempFolder();
        string[] command = [.. args.Select(a => a == "MODEL" ? TinyLlama : a), .. args[0] == "eval" ? Array.Empty<string>() : ["-o", temp.File("out.onnx")]];
        var run = CliHarness.Run([.. command, "--json"]);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains(named, run.Json().GetProperty("error").GetProperty("message").GetString());
        Assert.Empty(temp.FileNames());
        Assert.DoesNotContain("calibrating", run.Error);
        Assert.DoesNotContain("evaluating", run.Error);
    }

    [Fact]
    public void The_gate_verdict_is_recorded_in_the_model_provenance()
    {
        using var temp = new TempFolder();
        var run = CliHarness.Run(["awq", TinyLlama, "-o", temp.File("q.onnx"), .. Rtn, "--min-top1", "0"]);
        Assert.True(run.ExitCode == 0, run.Error);
        using var model = OnnxQuant.IO.ModelFile.Load(temp.File("q.onnx"));
        var entry = model.Header.MetadataProps.Single(p => p.Key == OnnxQuant.Recipes.ModelProvenance.VerificationKey).Value;
        using var doc = JsonDocument.Parse(entry);
        Assert.Equal(run.Json().GetProperty("gates")[0].GetProperty("measured").GetDouble(), doc.RootElement.GetProperty("gates")[0].GetProperty("measured").GetDouble());
        Assert.Equal(run.Json().GetProperty("verification").GetProperty("top1_agreement").GetDouble(), doc.RootElement.GetProperty("top1_agreement").GetDouble());
    }
}
