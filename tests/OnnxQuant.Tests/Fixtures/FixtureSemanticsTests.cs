using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Fixtures;

/// <summary>The fixtures compute what their names promise: causal masking, padding masks, a working KV cache, and
/// norms equal to an independent computation.</summary>
public class FixtureSemanticsTests
{
    private static readonly FixtureOptions Torch = new() { Family = FixtureFamily.TorchLlama, OutlierChannels = 3 };
    private static readonly FixtureOptions GenAiKv = new() { Family = FixtureFamily.GenAiLlama, KvCache = true, OutlierChannels = 3 };

    [Fact]
    public void Torch_llama_is_causal_later_tokens_do_not_change_earlier_logits()
    {
        long[] a = { 5, 17, 99, 3, 42, 7 }, b = { 5, 17, 99, 200, 1, 250 };
        var la = FixtureFeeds.Run(FixtureModels.Build(Torch), FixtureFeeds.For(Torch, 1, 6, ids: a))["logits"];
        var lb = FixtureFeeds.Run(FixtureModels.Build(Torch), FixtureFeeds.For(Torch, 1, 6, ids: b))["logits"];
        int prefix = 3 * Torch.Vocab;
        Assert.True(FixtureFeeds.RelativeMaxError(lb.Values[..prefix], la.Values[..prefix]) < 1e-6);
        Assert.True(FixtureFeeds.RelativeMaxError(la.Values[prefix..], lb.Values[prefix..]) > 1e-3, "later tokens should change later logits");
    }

    [Theory]
    [InlineData(FixtureFamily.TorchLlama, "logits")]
    [InlineData(FixtureFamily.Bert, "last_hidden_state")]
    public void Masked_padding_tokens_do_not_change_real_token_outputs(FixtureFamily family, string output)
    {
        var o = new FixtureOptions { Family = family, OutlierChannels = 3 };
        var proto = FixtureModels.Build(o);
        // Left padding for the causal model (the pads precede the real tokens), right padding for BERT.
        bool left = family == FixtureFamily.TorchLlama;
        long[] mask = left ? new long[] { 0, 0, 1, 1, 1, 1 } : new long[] { 1, 1, 1, 1, 0, 0 };
        long[] ids1 = left ? new long[] { 9, 9, 5, 6, 7, 8 } : new long[] { 5, 6, 7, 8, 9, 9 };
        long[] ids2 = left ? new long[] { 200, 31, 5, 6, 7, 8 } : new long[] { 5, 6, 7, 8, 200, 31 };
        OrtResult RunWith(long[] ids)
        {
            var feeds = FixtureFeeds.For(o, 1, 6, ids: ids);
            feeds["attention_mask"] = OrtFeed.Int64(mask, 1, 6);
            return FixtureFeeds.Run(proto, feeds)[output];
        }
        var r1 = RunWith(ids1);
        var r2 = RunWith(ids2);
        int width = (int)r1.Shape[2];
        var real = Enumerable.Range(0, 6).Where(t => mask[t] == 1).SelectMany(t => Enumerable.Range(t * width, width)).ToArray();
        var pad = Enumerable.Range(0, 6).Where(t => mask[t] == 0).SelectMany(t => Enumerable.Range(t * width, width)).ToArray();
        Assert.True(FixtureFeeds.RelativeMaxError(real.Select(i => r2.Values[i]).ToArray(), real.Select(i => r1.Values[i]).ToArray()) < 1e-5);
        Assert.True(FixtureFeeds.RelativeMaxError(pad.Select(i => r2.Values[i]).ToArray(), pad.Select(i => r1.Values[i]).ToArray()) > 1e-3,
            "the padded positions' own outputs should depend on their ids (the test would be vacuous otherwise)");
    }

    [Fact]
    public void Genai_kv_cache_decoding_in_two_steps_equals_one_pass_and_the_cacheless_model()
    {
        const int total = 6, first = 4;
        long[] ids = { 11, 22, 33, 44, 55, 66 };
        var cached = FixtureModels.Build(GenAiKv);
        using var runner = new OrtRunner(Google.Protobuf.MessageExtensions.ToByteArray(cached));

        var full = runner.Run(FixtureFeeds.For(GenAiKv, 1, total, ids: ids, past: 0));
        var step1 = runner.Run(FixtureFeeds.For(GenAiKv, 1, first, ids: ids[..first], past: 0));
        var feeds2 = FixtureFeeds.For(GenAiKv, 1, total - first, ids: ids[first..], past: first);
        for (int i = 0; i < GenAiKv.Layers; i++)
        {
            var key = step1[$"present.{i}.key"];
            var value = step1[$"present.{i}.value"];
            feeds2[$"past_key_values.{i}.key"] = OrtFeed.Float(key.Values, key.Shape);
            feeds2[$"past_key_values.{i}.value"] = OrtFeed.Float(value.Values, value.Shape);
        }
        var step2 = runner.Run(feeds2);

        int v = GenAiKv.Vocab;
        Assert.True(FixtureFeeds.RelativeMaxError(step1["logits"].Values, full["logits"].Values[..(first * v)]) < 1e-5);
        Assert.True(FixtureFeeds.RelativeMaxError(step2["logits"].Values, full["logits"].Values[(first * v)..]) < 1e-5);
        Assert.Equal(full["present.1.key"].Values, step2["present.1.key"].Values, new ToleranceComparer(1e-5f));

        var cacheless = FixtureFeeds.Run(FixtureModels.Build(GenAiKv with { KvCache = false }), FixtureFeeds.For(GenAiKv with { KvCache = false }, 1, total, ids: ids));
        Assert.True(FixtureFeeds.RelativeMaxError(cacheless["logits"].Values, full["logits"].Values) < 1e-5);
    }

    [Theory]
    [InlineData(FixtureFamily.TorchLlama)]
    [InlineData(FixtureFamily.GenAiLlama)]
    public void Layer0_rms_norm_equals_an_independent_computation(FixtureFamily family)
    {
        var o = new FixtureOptions { Family = family, OutlierChannels = 3 };
        var built = FixtureModels.BuildWithDescription(o);
        string activation = built.Description.Sites[0].Activation;
        var feeds = FixtureFeeds.For(o, 2, 4);
        var ort = FixtureFeeds.Run(built.Proto, feeds, activation)[activation];

        using var model = OnnxModel.FromProto(built.Proto);
        var table = model.Graph.GetInitializer("model.embed_tokens.weight")!.ToFloats();
        var gamma = model.Graph.GetInitializer("model.layers.0.input_layernorm.weight")!.ToFloats();
        var positions = family == FixtureFamily.GenAiLlama ? model.Graph.GetInitializer("model.embed_positions.weight")!.ToFloats() : null;
        var ids = feeds["input_ids"].Int64s!;
        var expected = new float[ort.Values.Length];
        int h = o.Hidden;
        for (int t = 0; t < ids.Length; t++)
        {
            var x = new double[h];
            for (int c = 0; c < h; c++)
                x[c] = table[ids[t] * h + c] + (positions?[(t % 4) * h + c] ?? 0f);
            double rms = Math.Sqrt(x.Average(v => v * v) + o.Epsilon);
            for (int c = 0; c < h; c++)
                expected[t * h + c] = (float)(x[c] / rms * gamma[c]);
        }
        Assert.Equal(new long[] { 2, 4, h }, ort.Shape);
        Assert.True(FixtureFeeds.RelativeMaxError(ort.Values, expected) < 1e-5);
    }

    [Theory]
    [InlineData("bert", "bert-decomposed")]
    [InlineData("bert", "bert-skip")]
    [InlineData("torch", "torch-div-nomask")]
    public void Norm_styles_of_one_family_compute_the_same_function(string a, string b)
    {
        // Same seed -> same weights whatever the norm style, so LayerNormalization, its decomposition and the fused
        // SkipLayerNormalization (bias and skip inputs) must agree; so must RMSNorm's Reciprocal and Div forms.
        var oa = FixtureRunTests.Variants[a] with { OutlierChannels = 3 };
        var ob = FixtureRunTests.Variants[b] with { OutlierChannels = 3 };
        var ra = FixtureFeeds.Run(FixtureModels.Build(oa), FixtureFeeds.For(oa, 2, 5));
        var rb = FixtureFeeds.Run(FixtureModels.Build(ob), FixtureFeeds.For(ob, 2, 5));
        Assert.Equal(ra.Keys.Order(), rb.Keys.Order());
        foreach (var (name, result) in ra)
            Assert.True(FixtureFeeds.RelativeMaxError(rb[name].Values, result.Values) < 1e-5, $"{a} vs {b}: {name}");
    }

    [Fact]
    public void Skip_simplified_layer_norm_output_3_is_the_residual_sum()
    {
        var o = new FixtureOptions { Family = FixtureFamily.GenAiLlama, OutlierChannels = 3 };
        var proto = FixtureModels.Build(o);
        var skip = proto.Graph.Node.Single(n => n.Name == "/model/layers.0/post_attention_layernorm/SkipLayerNorm");
        Assert.Equal(4, skip.Output.Count);
        var r = FixtureFeeds.Run(proto, FixtureFeeds.For(o, 1, 4), skip.Input[0], skip.Input[1], skip.Output[3]);
        var sum = r[skip.Input[0]].Values.Zip(r[skip.Input[1]].Values, (x, y) => x + y).ToArray();
        Assert.True(FixtureFeeds.RelativeMaxError(r[skip.Output[3]].Values, sum) < 1e-6);
    }

    private sealed class ToleranceComparer(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tolerance * Math.Max(1f, Math.Abs(b));
        public int GetHashCode(float value) => 0;
    }
}
