using System.Text.Json;
using Google.Protobuf;
using OnnxQuant.Analysis;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Tests.Cli;
using OnnxQuant.Tests.Support;
using Xunit.Abstractions;

namespace OnnxQuant.Tests.Analysis;

/// <summary>
/// The linear analysis never stays silent: every MatMul/Gemm of <see cref="UnusualLinearsModel"/> (weights through Cast,
/// Transpose, Reshape, Squeeze, an If body, a tied head) is quantized or kept with a stated reason, the same in
/// `inspect`, `smooth` and `awq`, and the quantized models stay close to the float one in ONNX Runtime.
/// </summary>
public sealed class LinearAnalysisTests : IDisposable
{
    private readonly TempFolder _temp = new();
    private readonly ITestOutputHelper _output;
    private readonly string _model;
    private readonly string _ids;

    public LinearAnalysisTests(ITestOutputHelper output)
    {
        _output = output;
        _model = _temp.File("model.onnx");
        File.WriteAllBytes(_model, UnusualLinearsModel.Build().ToByteArray());
        _ids = _temp.RandomIds(UnusualLinearsModel.Vocab, seed: 3);
    }

    public void Dispose() => _temp.Dispose();

    private static int TotalLinears => UnusualLinearsModel.MainLinears.Length + UnusualLinearsModel.BodyLinears.Length;

    [Fact]
    public void Every_matmul_has_a_typed_verdict_and_weight_chains_are_seen_through()
    {
        using var model = ModelFile.Load(_model);
        var table = LinearAnalysis.Analyze(model.Graph, new LinearSelection());
        Assert.Equal(TotalLinears, table.Count);
        var verdict = table.All.ToDictionary(c => c.Name);
        Assert.Equal("Cast", verdict["fp16_cast"].WeightVia);
        Assert.Equal("Cast", verdict["bf16_cast"].WeightVia);
        Assert.Equal("Transpose", verdict["transposed"].WeightVia);
        Assert.Equal("Reshape", verdict["reshaped"].WeightVia);
        Assert.Equal("Squeeze", verdict["squeezed"].WeightVia);
        foreach (var name in new[] { "fp16_cast", "bf16_cast", "transposed", "reshaped", "squeezed", "body_outer", "body_inner" })
            Assert.True(verdict[name].Quantizable, $"{name}: {verdict[name].ReasonText}");
        Assert.Equal((UnusualLinearsModel.Hidden, UnusualLinearsModel.Hidden), (verdict["reshaped"].K, verdict["reshaped"].N));
        Assert.Equal(KeepReason.ComputedWeight, verdict["scores"].Reason);
        Assert.Equal(KeepReason.ComputedWeight, verdict["context"].Reason);
        Assert.Equal(KeepReason.LmHead, verdict["lm_head_tied"].Reason);
        Assert.Equal((UnusualLinearsModel.Hidden, UnusualLinearsModel.Vocab), (verdict["lm_head_tied"].K, verdict["lm_head_tied"].N));
        Assert.Equal("branch/then_branch", verdict["body_outer"].Scope);
        Assert.True(verdict["body_outer"].ActivationCalibrated);
        Assert.False(verdict["body_inner"].ActivationCalibrated);
        Assert.True(LinearAnalysis.Analyze(model.Graph, new LinearSelection(includeLmHead: true)).Find("lm_head_tied")!.Quantizable);
    }

    [Fact]
    public void Inspect_lists_every_matmul_with_its_verdict()
    {
        var result = CliHarness.Run("inspect", _model, "--json");
        Assert.Equal((0, ""), (result.ExitCode, result.Error));
        var linears = result.Json().GetProperty("linears").EnumerateArray().ToList();
        Assert.Equal(TotalLinears, linears.Count);
        Assert.Equal(7, linears.Count(l => l.GetProperty("reason").GetString() == "None"));
        Assert.Equal("keep: LM head", Row(CliHarness.Run("inspect", _model), "lm_head_tied"));
        Assert.Equal("quantize", Row(CliHarness.Run("inspect", _model), "branch/then_branch/body_inner"));
    }

    // The verdict cell of a node's row in the text table.
    private static string Row(CliHarness.Result result, string node)
    {
        var line = result.Out.Split('\n').Single(l => l.TrimStart().StartsWith(node + " ", StringComparison.Ordinal));
        return line.Contains("keep: LM head") ? "keep: LM head" : line.Contains("quantize") ? "quantize" : line;
    }

    [Fact]
    public void Smooth_quantizes_through_the_chains_and_says_why_it_keeps_the_rest()
    {
        string output = _temp.File("sq.onnx");
        var run = CliHarness.Run("smooth", _model, "--data", _ids, "--samples", "8", "--seq-len", "16", "--device", "cpu", "--no-verify", "--json", "-o", output);
        Assert.True(run.ExitCode == 0, run.Error);
        var json = run.Json();
        var kept = json.GetProperty("linears_kept").EnumerateArray().Select(k => (k.GetProperty("name").GetString(), k.GetProperty("code").GetString())).ToList();
        int quantized = json.GetProperty("linears_quantized").GetInt32();
        Assert.Equal(TotalLinears, json.GetProperty("linears").GetInt32());
        Assert.Equal(TotalLinears, quantized + kept.Count);
        Assert.Equal(6, quantized);   // 5 chains + the body's linear on an outer value
        Assert.Contains(("branch/then_branch/body_inner", "SubgraphNotCalibrated"), kept);
        Assert.Contains(("lm_head_tied", "LmHead"), kept);
        AssertQuantizedOps(output, "MatMulInteger", main: 5, body: 1);
        AssertClose(output, 0.05);

        // Every emitted node says which linears it stands for: each quantized linear has its MatMulInteger.
        using var written = ModelFile.Load(output);
        var stamped = written.Graph.Nodes.Select(Provenance.Of).Where(p => p is not null).ToList();
        var computed = stamped.Where(p => p!.Role == ProvenanceRole.Linear).Select(p => Assert.Single(p!.Linears)).ToHashSet();
        Assert.Equal(["bf16_cast", "fp16_cast", "reshaped", "squeezed", "transposed"], computed.Order());
        Assert.All(stamped, p => Assert.Equal("w8a8-int8", p!.Scheme));
    }

    [Fact]
    public void Smooth_dynamic_with_the_head_quantizes_every_constant_weight_linear()
    {
        string output = _temp.File("dyn.onnx");
        var run = CliHarness.Run("smooth", _model, "--alpha", "none", "--format", "dynamic", "--include-lm-head", "--no-verify", "--json", "-o", output);
        Assert.True(run.ExitCode == 0, run.Error);
        var json = run.Json();
        Assert.Equal(8, json.GetProperty("linears_quantized").GetInt32());
        Assert.All(json.GetProperty("linears_kept").EnumerateArray(), k => Assert.Equal("ComputedWeight", k.GetProperty("code").GetString()));
        AssertQuantizedOps(output, "MatMulInteger", main: 6, body: 2);
        // The tied head got its own int8 weight; the embedding table stays for the Gather.
        using var written = ModelFile.Load(output);
        Assert.NotNull(written.Graph.GetInitializer("embed_tokens.weight"));
        Assert.DoesNotContain(written.Graph.Nodes, n => n.OpType is "Transpose" or "Cast" or "Reshape" or "Squeeze" && n.Input.Any(i => written.Graph.GetInitializer(i) is not null));
        AssertClose(output, 0.05);
    }

    [Fact]
    public void Awq_rtn_quantizes_chains_bodies_and_the_tied_head()
    {
        string output = _temp.File("rtn.onnx");
        var run = CliHarness.Run("awq", _model, "--method", "rtn", "--group-size", "32", "--include-lm-head", "--no-verify", "--json", "-o", output);
        Assert.True(run.ExitCode == 0, run.Error);
        var json = run.Json();
        Assert.Equal(8, json.GetProperty("quantized_linears").GetInt32());
        Assert.Equal(2, json.GetProperty("kept_linears").GetInt32());
        AssertQuantizedOps(output, "MatMulNBits", main: 6, body: 2);
        AssertClose(output, 0.25);   // every linear at 4 bits, the head included (measured 0.148)
    }

    [Fact]
    public void Awq_counts_add_up_and_name_every_kept_reason()
    {
        string output = _temp.File("awq.onnx");
        var run = CliHarness.Run("awq", _model, "--data", _ids, "--samples", "8", "--seq-len", "16", "--group-size", "32", "--device", "cpu", "--no-verify", "--json", "-o", output);
        Assert.True(run.ExitCode == 0, run.Error);
        var json = run.Json();
        Assert.Equal(7, json.GetProperty("quantized_linears").GetInt32());
        Assert.Equal(TotalLinears, json.GetProperty("quantized_linears").GetInt32() + json.GetProperty("kept_linears").GetInt32());
        Assert.Equal(["ComputedWeight", "ComputedWeight", "LmHead"],
            json.GetProperty("kept").EnumerateArray().Select(k => k.GetProperty("code").GetString()).Order());
        AssertClose(output, 0.15);   // measured 0.117, the head in float
    }

    private static void AssertQuantizedOps(string path, string op, int main, int body)
    {
        using var model = ModelFile.Load(path);
        Assert.Equal(main, model.Graph.Nodes.Count(n => n.OpType == op));
        var branch = model.Graph.Nodes.Single(n => n.OpType == "If");
        Assert.Equal(body, branch.Attribute.Single(a => a.Name == "then_branch").G.Node.Count(n => n.OpType == op));
    }

    // The quantized model's logits against the float model's on held-out ids, in ONNX Runtime.
    private void AssertClose(string path, double bound)
    {
        var rng = new Random(8);
        var ids = Enumerable.Range(0, 2 * 12).Select(_ => (long)rng.Next(UnusualLinearsModel.Vocab)).ToArray();
        var feeds = new Dictionary<string, OrtFeed> { ["input_ids"] = OrtFeed.Int64(ids, 2, 12) };
        var reference = OrtRunner.RunOnce(_model, feeds)["logits"].Values;
        var quantized = OrtRunner.RunOnce(path, feeds)["logits"].Values;
        double diff = 0, norm = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            diff += (quantized[i] - reference[i]) * (double)(quantized[i] - reference[i]);
            norm += reference[i] * (double)reference[i];
        }
        double error = Math.Sqrt(diff / norm);
        _output.WriteLine($"{Path.GetFileName(path)}: relative logits error {error:E3}");
        Assert.True(error < bound, $"{Path.GetFileName(path)}: relative logits error {error:E3} (bound {bound})");
    }
}
