using System.Text.Json;
using OnnxQuant.Fixtures;
using OnnxQuant.Tests.Cli;
using OnnxQuant.Tests.W8A8;
using Xunit.Abstractions;

namespace OnnxQuant.Tests.Smoothing;

/// <summary>
/// The graphs exporters write (docs/architecture.md, "Exported graph patterns"), each quantized by `onnxquant smooth`
/// (int8 and per-token dynamic) and `onnxquant awq` from pre-tokenized ids, then compared with the float model in ONNX
/// Runtime on held-out ids: the relative logits error ||Δ|| / ||logits|| stays within the usual bounds. In the
/// grouped-query families, o_proj's smoothing folds into v_proj's columns through the KV repeat instead of being left.
/// </summary>
public sealed class ExporterFamilyTests(ITestOutputHelper log) : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>
    /// The usual error at these sizes, from the two reference families (random weights, two outlier channels x50,
    /// measured 0.12 / 0.03 / 0.24 for int8 / dynamic / W4 in blocks of 32) with a fifth of margin: a family the passes
    /// mishandle (an unsmoothed outlier group, a wrong fold) lands well above.
    /// </summary>
    private const double Int8Bound = 0.15, DynamicBound = 0.04, W4Bound = 0.30;

    private static readonly FixtureOptions Base = new() { Layers = 2, Hidden = 64, Heads = 4, Intermediate = 128, Vocab = 128, OutlierChannels = 2, Seed = 21 };

    public static TheoryData<string> Families => new(FamilyOptions.Keys);

    private static readonly Dictionary<string, FixtureOptions> FamilyOptions = new()
    {
        // The families the fixtures had before, as the yardstick of the usual error.
        ["torch (reference)"] = Base,
        ["genai plain ops (reference)"] = Base with { Family = FixtureFamily.GenAiLlama },
        ["genai GroupQueryAttention + RotaryEmbedding"] = Base with
            { Family = FixtureFamily.GenAiLlama, KvCache = true, KvHeads = 2, Attention = GenAiAttention.GroupQueryAttention },
        ["genai packed QKV GroupQueryAttention"] = Base with
            { Family = FixtureFamily.GenAiLlama, KvCache = true, KvHeads = 2, Attention = GenAiAttention.PackedGroupQueryAttention },
        ["optimum past_key_values + position_ids"] = Base with { Family = FixtureFamily.OptimumLlama, KvHeads = 2 },
        ["torch GQA repeat by Expand"] = Base with { Layers = 1, KvHeads = 2, RepeatKv = KvRepeat.Expand },
        ["torch GQA repeat by Tile"] = Base with { Layers = 1, KvHeads = 2, RepeatKv = KvRepeat.Tile },
        ["torch GQA repeat by Concat"] = Base with { Layers = 1, KvHeads = 2, RepeatKv = KvRepeat.Concat },
        ["torch fp16 with fp32 norms"] = Base with { Fp16 = true, Fp32Norms = true },
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void SmoothAndAwqStayWithinTheUsualError(string family)
    {
        var options = FamilyOptions[family];
        string model = FixtureModels.Save(options, _temp.Path);
        string ids = _temp.File("calib.ids");
        var rng = new Random(5);
        File.WriteAllText(ids, string.Join(" ", Enumerable.Range(0, 1024).Select(_ => rng.Next(options.Vocab))));
        string[] common = ["--data", ids, "--samples", "8", "--seq-len", "64", "--device", "cpu", "--no-verify", "--json"];

        var heldOut = W8A8TestKit.Tokens(options.Vocab, 2, 24, seed: 77);
        var reference = W8A8TestKit.Run(model, heldOut);
        (double Error, JsonElement Json) Quantize(string name, params string[] args)
        {
            string output = _temp.File($"{name}.onnx");
            var run = CliHarness.Run([.. args, model, .. common, "-o", output]);
            Assert.True(run.ExitCode == 0, $"{family}, {name}: exit {run.ExitCode}\n{run.Error}");
            double error = W8A8TestKit.RelativeError(reference, W8A8TestKit.Run(output, heldOut));
            log.WriteLine($"{family}: {name} relative logits error {error:F4}");
            return (error, run.Json());
        }

        var int8 = Quantize("int8", "smooth");
        var dynamic = Quantize("dynamic", "smooth", "--format", "dynamic");
        var w4 = Quantize("awq", "awq", "--group-size", "32");
        Assert.True(int8.Error < Int8Bound, $"{family}: smooth int8 error {int8.Error:F4}");
        Assert.True(dynamic.Error < DynamicBound, $"{family}: smooth dynamic error {dynamic.Error:F4}");
        Assert.True(w4.Error < W4Bound, $"{family}: awq error {w4.Error:F4}");
        Assert.True(int8.Json.GetProperty("linears_quantized").GetInt32() >= 5 * options.Layers, $"{family}: too few linears quantized");

        if (options.Family == FixtureFamily.TorchLlama && options.KvHeadCount < options.Heads)
            foreach (var group in int8.Json.GetProperty("groups").EnumerateArray()
                         .Where(g => g.GetProperty("consumers").EnumerateArray().Any(c => c.GetString()!.EndsWith("o_proj/MatMul", StringComparison.Ordinal))))
            {
                Assert.Equal("folded", group.GetProperty("status").GetString());
                Assert.Equal("LinearColumns", group.GetProperty("fold_kind").GetString());
                Assert.Contains("v_proj", group.GetProperty("target").GetString());
            }
    }
}
