using OnnxQuant.Analysis;
using OnnxQuant.Fixtures;
using OnnxQuant.IR;
using OnnxQuant.Smoothing;
using OnnxQuant.Tests.W8A8;

namespace OnnxQuant.Tests.Smoothing;

/// <summary>
/// Smoothing must not change what the model computes: every group of a fixture takes a random per-channel s (0.05..20)
/// and the outputs stay equal up to float rounding. As a control, the producer fold alone (without the compensating
/// weight rows) must change the outputs, so the test cannot pass by a fold that does nothing.
/// </summary>
public class FoldExactnessTests
{
    public static TheoryData<string, FixtureOptions, string[]> Cases => new()
    {
        { "torch llama (decomposed RMSNorm, attention, SwiGLU)", new FixtureOptions { Family = FixtureFamily.TorchLlama, Layers = 2, OutlierChannels = 2, Seed = 3 },
            ["DecomposedRMSNorm:NormGamma", "MatMul:LinearColumns:attention", "MatMul:LinearColumns:gated Mul"] },
        { "torch llama, Div RMSNorm", new FixtureOptions { Family = FixtureFamily.TorchLlama, Layers = 1, RmsNorm = RmsNormStyle.Div, Seed = 4 },
            ["DecomposedRMSNorm:NormGamma"] },
        { "genai llama (SimplifiedLN, SkipSimplifiedLN)", new FixtureOptions { Family = FixtureFamily.GenAiLlama, Layers = 2, OutlierChannels = 2, Seed = 5 },
            ["RMSNorm:NormGamma", "SkipRMSNorm:NormGamma", "MatMul:LinearColumns:attention", "MatMul:LinearColumns:gated Mul"] },
        { "genai llama with KV cache (o_proj gets a Mul)", new FixtureOptions { Family = FixtureFamily.GenAiLlama, Layers = 1, KvCache = true, Seed = 6 },
            ["Other:InsertedMul"] },
        { "bert LayerNormalization (residual-fed: Mul)", new FixtureOptions { Family = FixtureFamily.Bert, Layers = 1, Seed = 7 },
            ["LayerNorm:InsertedMul", "MatMul:LinearColumns:attention", "Other:InsertedMul"] },
        { "bert decomposed LayerNorm", new FixtureOptions { Family = FixtureFamily.Bert, Layers = 1, BertNorm = BertNormStyle.Decomposed, Seed = 8 },
            ["DecomposedLayerNorm:InsertedMul"] },
        { "bert SkipLayerNormalization", new FixtureOptions { Family = FixtureFamily.Bert, Layers = 2, BertNorm = BertNormStyle.SkipLayerNormalization, Seed = 9 },
            ["SkipLayerNorm:InsertedMul"] },
        { "torch llama fp16", new FixtureOptions { Family = FixtureFamily.TorchLlama, Layers = 1, Fp16 = true, Seed = 10 },
            ["DecomposedRMSNorm:NormGamma", "MatMul:LinearColumns:attention", "MatMul:LinearColumns:gated Mul"] },
        { "torch llama fp16, norms in fp32 between Casts", new FixtureOptions { Family = FixtureFamily.TorchLlama, Layers = 1, Fp16 = true, Fp32Norms = true, Seed = 14 },
            ["DecomposedRMSNorm:NormGamma", "MatMul:LinearColumns:attention", "MatMul:LinearColumns:gated Mul"] },
        // o_proj folds into v_proj's columns through the KV repeat, each v column taking the one s its copies share.
        { "torch llama GQA, repeat_kv by Expand", new FixtureOptions { Family = FixtureFamily.TorchLlama, Layers = 1, KvHeads = 2, RepeatKv = KvRepeat.Expand, Seed = 15 },
            ["DecomposedRMSNorm:NormGamma", "MatMul:LinearColumns:attention", "MatMul:LinearColumns:gated Mul"] },
        { "torch llama GQA, repeat_kv by Tile", new FixtureOptions { Family = FixtureFamily.TorchLlama, Layers = 1, KvHeads = 1, RepeatKv = KvRepeat.Tile, Seed = 16 },
            ["MatMul:LinearColumns:attention"] },
        { "torch llama GQA, repeat_kv by Concat", new FixtureOptions { Family = FixtureFamily.TorchLlama, Layers = 1, KvHeads = 2, RepeatKv = KvRepeat.Concat, Seed = 17 },
            ["MatMul:LinearColumns:attention"] },
        { "optimum llama (RoPE, past_key_values: o_proj gets a Mul)", new FixtureOptions { Family = FixtureFamily.OptimumLlama, Layers = 1, KvHeads = 2, Seed = 18 },
            ["DecomposedRMSNorm:NormGamma", "Other:InsertedMul", "MatMul:LinearColumns:gated Mul"] },
        { "genai GroupQueryAttention + RotaryEmbedding", new FixtureOptions { Family = FixtureFamily.GenAiLlama, Layers = 2, KvCache = true, KvHeads = 2,
            Attention = GenAiAttention.GroupQueryAttention, Seed = 19 }, ["RMSNorm:NormGamma", "SkipRMSNorm:NormGamma", "MatMul:LinearColumns:gated Mul"] },
        { "genai packed QKV GroupQueryAttention", new FixtureOptions { Family = FixtureFamily.GenAiLlama, Layers = 1, KvCache = true, KvHeads = 2,
            Attention = GenAiAttention.PackedGroupQueryAttention, Seed = 20 }, ["RMSNorm:NormGamma", "SkipRMSNorm:NormGamma"] },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void RandomScalesLeaveTheOutputsUnchanged(string name, FixtureOptions options, string[] expectedKinds)
    {
        var windows = W8A8TestKit.Tokens(options.Vocab, 2, 12, seed: 11);
        using var model = FixtureModels.BuildModel(options);
        var reference = W8A8TestKit.Run(W8A8TestKit.Serialize(model), windows);
        var groups = SmoothingGroups.Find(model.Graph);
        var kinds = groups.Select(Kind).ToHashSet();
        foreach (var expected in expectedKinds)
            Assert.True(kinds.Contains(expected), $"{name}: no group of kind {expected}; found {string.Join(", ", kinds)}");

        var random = new Random(12);
        foreach (var group in groups)
        {
            Assert.True(group.Producer.IsExact(model.Graph), $"{group}: target not exact");
            group.Apply(model.Graph, RandomScale(random, group));
        }
        GraphValidator.Validate(model.Graph, name);
        var smoothed = W8A8TestKit.Run(W8A8TestKit.Serialize(model), windows);
        double error = W8A8TestKit.RelativeError(reference, smoothed);
        Assert.True(error < (options.Fp16 ? 2e-2 : 2e-5), $"{name}: relative output error {error:E2} after smoothing {groups.Count} groups");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TheProducerFoldAloneChangesTheOutputs(string name, FixtureOptions options, string[] expectedKinds)
    {
        _ = expectedKinds;
        var windows = W8A8TestKit.Tokens(options.Vocab, 1, 12, seed: 13);
        using var model = FixtureModels.BuildModel(options);
        var reference = W8A8TestKit.Run(W8A8TestKit.Serialize(model), windows);
        var random = new Random(14);
        // The first group of each kind: without the weight rows, the scale reaches the output.
        foreach (var group in SmoothingGroups.Find(model.Graph).GroupBy(Kind).Select(g => g.First()))
        {
            using var copy = FixtureModels.BuildModel(options);
            var same = SmoothingGroups.Find(copy.Graph).Single(g => g.Activation == group.Activation);
            same.Producer.Apply(copy.Graph, RandomScale(random, same));
            double error = W8A8TestKit.RelativeError(reference, W8A8TestKit.Run(W8A8TestKit.Serialize(copy), windows));
            Assert.True(error > 1e-2, $"{name}: folding into {same.Producer.Description} alone changed the output by only {error:E2}");
        }
    }

    private static string Kind(SmoothingGroup g) =>
        g.Producer is LinearColumnsFold l && l.PathNodes.Count > 0 ? $"{g.ProducerKind}:{g.Producer.Kind}:{l.Pattern}" : $"{g.ProducerKind}:{g.Producer.Kind}";

    // Log-uniform in [0.05, 20]: far from 1 in both directions; channels tied by a KV repeat share their geometric mean.
    private static float[] RandomScale(Random random, SmoothingGroup group)
    {
        var s = Enumerable.Range(0, group.Channels).Select(_ => (float)Math.Exp(random.NextDouble() * Math.Log(400) - Math.Log(20))).ToArray();
        return group.Ties?.GeometricMean(s) ?? s;
    }

    [Fact]
    public void ChannelsCopiedFromOneColumnRefuseDifferentScales()
    {
        using var model = FixtureModels.BuildModel(new FixtureOptions { Family = FixtureFamily.TorchLlama, Layers = 1, KvHeads = 2, Seed = 15 });
        var group = SmoothingGroups.Find(model.Graph).Single(g => g.Consumers[0].Name.EndsWith("o_proj/MatMul", StringComparison.Ordinal));
        var map = Assert.IsType<LinearColumnsFold>(group.Producer).Map;
        // Query heads 0 and 1 read key/value head 0: o_proj input channel d and 16 + d are v_proj column d.
        Assert.Equal(64, map.Count);
        Assert.Equal(Enumerable.Range(0, 16).Concat(Enumerable.Range(0, 16)).Concat(Enumerable.Range(16, 16)).Concat(Enumerable.Range(16, 16)), map);
        Assert.NotNull(group.Ties);
        var untied = Enumerable.Range(0, 64).Select(i => 1f + i).ToArray();
        var error = Assert.Throws<ArgumentException>(() => group.Apply(model.Graph, untied));
        Assert.Contains("different scales", error.Message);
    }
}
