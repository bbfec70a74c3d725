using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Tests.Cli;
using OnnxQuant.Tests.Fixtures;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Awq;

/// <summary>`onnxquant awq` in-process on fixture files and on the real MiniLM.</summary>
public sealed class AwqCommandTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private static readonly FixtureOptions Options =
        new() { Family = FixtureFamily.TorchLlama, Layers = 2, Hidden = 64, Heads = 4, Intermediate = 128, Vocab = 128, OutlierChannels = 3, Seed = 3 };

    [Fact]
    public void RtnAndAwqWriteMatMulNBitsModelsAndAwqIsCloserToTheFloatModel()
    {
        string model = FixtureModels.Save(Options, _temp.Path);
        string ids = _temp.File("calib.ids");
        var rng = new Random(1);
        File.WriteAllText(ids, string.Join(" ", Enumerable.Range(0, 2048).Select(_ => rng.Next(Options.Vocab))));

        var rtn = CliHarness.Run("awq", model, "--method", "rtn", "--group-size", "32", "--no-verify", "--json", "-o", _temp.File("rtn.onnx"));
        Assert.Equal(0, rtn.ExitCode);
        // Stage lines reach stderr also when it is redirected (a CI log); stdout holds only the JSON.
        Assert.Equal(["rewriting to 4-bit MatMulNBits, round-to-nearest (blocks of 32)", "wrote " + _temp.File("rtn.onnx")],
            rtn.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("  w4-rewrite", StringComparison.Ordinal)));
        var awq = CliHarness.Run("awq", model, "--data", ids, "--samples", "8", "--seq-len", "64", "--group-size", "32", "--device", "cpu",
            "--no-verify", "--json", "-o", _temp.File("awq.onnx"));
        Assert.Equal(0, awq.ExitCode);

        var rtnJson = rtn.Json();
        var awqJson = awq.Json();
        Assert.Equal("rtn", rtnJson.GetProperty("method").GetString());
        Assert.Equal(14, rtnJson.GetProperty("quantized_linears").GetInt32());   // 2 x (q, k, v, o, gate, up, down)
        Assert.Equal(5, rtnJson.GetProperty("kept_linears").GetInt32());         // lm_head and 2 x (q·kᵀ, scores·v)
        var kept = rtnJson.GetProperty("kept").EnumerateArray().ToList();
        Assert.Equal(["ComputedWeight", "ComputedWeight", "ComputedWeight", "ComputedWeight", "LmHead"], kept.Select(k => k.GetProperty("code").GetString()).Order());
        Assert.Equal(0, rtnJson.GetProperty("groups").GetInt32());
        Assert.True(rtnJson.GetProperty("bytes_after").GetInt64() < rtnJson.GetProperty("bytes_before").GetInt64());
        Assert.True(awqJson.GetProperty("scaled_groups").GetInt32() >= 4);
        Assert.True(awqJson.GetProperty("calibration_seconds").GetDouble() > 0);

        using (var written = ModelFile.Load(_temp.File("awq.onnx")))
        {
            Assert.Equal(14, written.Graph.Nodes.Count(n => n.IsMicrosoft("MatMulNBits")));
            Assert.Equal(1, written.OpsetVersion(Nodes.MicrosoftDomain));
        }
        var feeds = FixtureFeeds.For(Options, 2, 24, seed: 9);
        var reference = FixtureFeeds.Run(FixtureModels.Build(Options), feeds)["logits"].Values;
        double Error(string path)
        {
            var logits = OrtRunner.RunOnce(path, feeds)["logits"].Values;
            return logits.Zip(reference).Sum(p => (double)(p.First - p.Second) * (p.First - p.Second)) / reference.Sum(v => (double)v * v);
        }
        double rtnError = Error(_temp.File("rtn.onnx")), awqError = Error(_temp.File("awq.onnx"));
        Assert.True(awqError < 0.5 * rtnError, $"AWQ {awqError:g4} vs RTN {rtnError:g4}");
    }

    [Theory]
    [InlineData("--group-size", "48", 2, "--group-size must be 32, 64, 128 or 256")]
    [InlineData("--accuracy-level", "7", 2, "--accuracy-level must be 0..4")]
    [InlineData("--grid", "0", 2, "--grid must be 1..1000")]
    [InlineData("--clip", "--no-clip", 2, "--clip and --no-clip contradict each other")]
    [InlineData("--act-order", "--no-clip", 2, "--act-order and --no-act-order are GPTQ options")]
    [InlineData("--damp", "0", 2, "--damp must be auto or a fraction in (0, 1]")]
    [InlineData("--damp", "0.05", 2, "--damp is a GPTQ option")]
    [InlineData("--bits-budget", "40", 2, "--bits-budget must be an average in (0, 32]")]
    [InlineData("--max-size", "-1", 2, "--max-size must be a positive size in MB")]
    [InlineData("--sensitivity", "model", 2, "--sensitivity chooses how mixed precision ranks linears; give --bits-budget or --max-size")]
    [InlineData("--sensitivity", "layer", 2, "Argument 'layer' not recognized")]
    public void BadOptionsAreUsageErrors(string option, string value, int exitCode, string message)
    {
        string model = FixtureModels.Save(Options, _temp.Path);
        var result = CliHarness.Run("awq", model, "--method", "rtn", option, value);
        Assert.Equal(exitCode, result.ExitCode);
        Assert.Contains(message, result.Error);
        Assert.False(File.Exists(_temp.File("model.rtn.onnx")));
    }

    [Fact]
    public void AwqGptqUnderABitsBudgetListsEveryLinearsBitsAndStaysWithinIt()
    {
        string model = FixtureModels.Save(Options, _temp.Path);
        string ids = _temp.File("calib.ids");
        var rng = new Random(2);
        File.WriteAllText(ids, string.Join(" ", Enumerable.Range(0, 2048).Select(_ => rng.Next(Options.Vocab))));
        var run = CliHarness.Run("awq", model, "--data", ids, "--samples", "8", "--seq-len", "64", "--group-size", "32", "--device", "cpu",
            "--method", "awq-gptq", "--bits-budget", "6", "--no-verify", "--json", "-o", _temp.File("mixed.onnx"));
        Assert.Equal(0, run.ExitCode);
        var json = run.Json();
        Assert.Equal("awq-gptq", json.GetProperty("method").GetString());
        var mixed = json.GetProperty("mixed_precision");
        Assert.True(mixed.GetProperty("average_bits").GetDouble() <= 6);
        Assert.Equal("model", mixed.GetProperty("sensitivity").GetString());   // auto: affordable at this size
        Assert.True(mixed.GetProperty("planned_bytes").GetInt64() <= mixed.GetProperty("budget_bytes").GetInt64());
        var linears = json.GetProperty("linears").EnumerateArray().ToList();
        Assert.Equal(19, linears.Count);   // every MatMul/Gemm, kept ones with bits 0
        var quantized = linears.Where(l => l.GetProperty("bits").GetInt32() is 4 or 8).ToList();
        Assert.Equal(14, quantized.Count);
        Assert.All(quantized, l => Assert.Equal("gptq", l.GetProperty("rounding").GetString()));
        Assert.All(quantized, l => Assert.Equal(32, l.GetProperty("block_size").GetInt32()));   // nothing smaller than 32 to choose
        Assert.Equal(0, mixed.GetProperty("finer_blocks").GetInt32());
        int eight = linears.Count(l => l.GetProperty("bits").GetInt32() == 8);
        Assert.Equal(mixed.GetProperty("eight_bit").GetInt32(), eight);
        Assert.True(eight > 0);
        using var written = ModelFile.Load(_temp.File("mixed.onnx"));
        Assert.Equal(eight, written.Graph.Nodes.Count(n => n.IsMicrosoft("MatMulNBits") && n.Attribute.Single(a => a.Name == "bits").I == 8));
        // The emitted linears' weight bytes are the planned ones.
        long emitted = written.Graph.Nodes.Where(n => n.IsMicrosoft("MatMulNBits"))
            .Sum(n => n.Input.Skip(1).Take(3).Where(i => i.Length > 0).Sum(i => written.Graph.GetInitializer(i)!.ByteLength));
        Assert.Equal(mixed.GetProperty("planned_bytes").GetInt64(), emitted);

        var low = CliHarness.Run("awq", model, "--data", ids, "--samples", "2", "--seq-len", "32", "--group-size", "32", "--device", "cpu",
            "--method", "gptq", "--bits-budget", "4.5", "--no-verify", "-o", _temp.File("low.onnx"));
        Assert.Equal(2, low.ExitCode);
        // The paragraph is wrapped to the terminal width.
        string paragraph = CliHarness.Flat(low.Error);
        Assert.Contains("--bits-budget 4.5 (a recipe's bitsBudget) is below what every linear takes at 4 bits (5.125 average bits with blocks of 32)", paragraph);
        Assert.False(File.Exists(_temp.File("low.onnx")));
    }

    [Fact]
    public void MissingModelAndStatsOfAnotherModelAreRefused()
    {
        var missing = CliHarness.Run("awq", _temp.File("nope.onnx"), "--method", "rtn");
        Assert.Equal(3, missing.ExitCode);
        Assert.Contains("does not exist", missing.Error);

        string model = FixtureModels.Save(Options, _temp.Path);
        string other = FixtureModels.Save(Options with { Seed = 4 }, _temp.Path, "other.onnx");
        string ids = _temp.File("calib.ids");
        File.WriteAllText(ids, string.Join(" ", Enumerable.Range(0, 512).Select(i => i % Options.Vocab)));
        var calibrate = CliHarness.Run("calibrate", other, "--data", ids, "--samples", "2", "--seq-len", "32", "--device", "cpu", "--json", "-o", _temp.File("other.calib"));
        Assert.Equal(0, calibrate.ExitCode);
        var wrong = CliHarness.Run("awq", model, "--stats", _temp.File("other.calib"), "--no-verify");
        Assert.Equal(3, wrong.ExitCode);
        Assert.Contains("recorded on another model", wrong.Error);
        Assert.False(File.Exists(_temp.File("model.awq.onnx")));
    }

    // The real model: AWQ's held-out embeddings are closer to FP32 than RTN's (MiniLM's LayerNorm outliers are moderate,
    // docs/architecture.md, "The real models", so the gain is moderate too).
    [ArtifactFact(Artifact.MiniLm)]
    public void MiniLmAwqBeatsRtnOnHeldOutCosine()
    {
        string minilm = RequiredArtifact.MiniLmModel;
        // A slice of the held-out novel keeps the test short (about 40 sentences instead of 256).
        string heldOut = _temp.File("persuasion-part.txt");
        File.WriteAllText(heldOut, File.ReadAllText(Path.Combine(CliHarness.RepoRoot(), "models", "text", "persuasion.txt"))[20000..26000]);
        var rtn = CliHarness.Run("awq", minilm, "--method", "rtn", "--verify-data", heldOut, "--json", "--device", "cpu", "-o", _temp.File("rtn.onnx"));
        var awq = CliHarness.Run("awq", minilm, "--samples", "4", "--seq-len", "128", "--grid", "10", "--verify-data", heldOut, "--json", "--device", "cpu",
            "-o", _temp.File("awq.onnx"));
        Assert.Equal((0, 0), (rtn.ExitCode, awq.ExitCode));
        double rtnCosine = rtn.Json().GetProperty("verification").GetProperty("mean_cosine").GetDouble();
        double awqCosine = awq.Json().GetProperty("verification").GetProperty("mean_cosine").GetDouble();
        double rtnError = rtn.Json().GetProperty("verification").GetProperty("relative_error").GetDouble();
        double awqError = awq.Json().GetProperty("verification").GetProperty("relative_error").GetDouble();
        Assert.InRange(rtnCosine, 0.85, 0.99);
        Assert.True(awqCosine > rtnCosine + 0.005, $"AWQ cosine {awqCosine:0.0000} vs RTN {rtnCosine:0.0000}");
        Assert.True(awqError < 0.95 * rtnError, $"AWQ error {awqError:0.0000} vs RTN {rtnError:0.0000}");
        Assert.Equal(37, awq.Json().GetProperty("quantized_linears").GetInt32());
    }
}
