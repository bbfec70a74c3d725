using OnnxQuant.Fixtures;
using OnnxQuant.Tests.Support;
using DataType = Onnx.TensorProto.Types.DataType;

namespace OnnxQuant.Tests.Fixtures;

/// <summary>Every family and variant, fp32 and fp16, with and without outliers, runs in ORT CPU with sane outputs.</summary>
public class FixtureRunTests
{
    private const int Batch = 2, Seq = 5;

    public static TheoryData<string, bool, int> Cases()
    {
        var data = new TheoryData<string, bool, int>();
        foreach (var variant in Variants.Keys)
            foreach (bool fp16 in new[] { false, true })
                foreach (int outliers in new[] { 0, 3 })
                    data.Add(variant, fp16, outliers);
        return data;
    }

    internal static readonly Dictionary<string, FixtureOptions> Variants = new()
    {
        ["torch"] = new() { Family = FixtureFamily.TorchLlama },
        ["torch-div-nomask"] = new() { Family = FixtureFamily.TorchLlama, RmsNorm = RmsNormStyle.Div, AttentionMask = false },
        ["genai"] = new() { Family = FixtureFamily.GenAiLlama },
        ["genai-kv"] = new() { Family = FixtureFamily.GenAiLlama, KvCache = true },
        ["bert"] = new() { Family = FixtureFamily.Bert },
        ["bert-decomposed"] = new() { Family = FixtureFamily.Bert, BertNorm = BertNormStyle.Decomposed },
        ["bert-skip"] = new() { Family = FixtureFamily.Bert, BertNorm = BertNormStyle.SkipLayerNormalization },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Fixture_runs_in_ort_cpu_with_finite_outputs_of_the_right_shape(string variant, bool fp16, int outliers)
    {
        var o = Variants[variant] with { Fp16 = fp16, OutlierChannels = outliers, Layers = 2 };
        var proto = FixtureModels.Build(o);
        var expectedType = fp16 ? DataType.Float16 : DataType.Float;
        foreach (var output in proto.Graph.Output)
            Assert.Equal((int)expectedType, output.Type.TensorType.ElemType);

        foreach (int past in o.KvCache ? new[] { 0, 3 } : new[] { 0 })
        {
            var results = FixtureFeeds.Run(proto, FixtureFeeds.For(o, Batch, Seq, past: past));
            var expected = ExpectedShapes(o, past);
            Assert.Equal(expected.Keys.Order(), results.Keys.Order());
            foreach (var (name, shape) in expected)
            {
                var r = results[name];
                Assert.Equal(shape, r.Shape);
                Assert.All(r.Values, v => Assert.True(float.IsFinite(v), $"{name} has a non-finite value"));
                double mean = r.Values.Average(v => (double)v);
                double variance = r.Values.Average(v => (v - mean) * (v - mean));
                Assert.True(variance > 1e-6, $"{name}: variance {variance} (a constant output)");
            }
        }
    }

    private static Dictionary<string, long[]> ExpectedShapes(FixtureOptions o, int past)
    {
        if (o.Family == FixtureFamily.Bert)
            return new() { ["last_hidden_state"] = new long[] { Batch, Seq, o.Hidden }, ["pooler_output"] = new long[] { Batch, o.Hidden } };
        var shapes = new Dictionary<string, long[]> { ["logits"] = new long[] { Batch, Seq, o.Vocab } };
        if (o.KvCache)
            for (int i = 0; i < o.Layers; i++)
            {
                shapes[$"present.{i}.key"] = new long[] { Batch, o.Heads, past + Seq, o.HeadDim };
                shapes[$"present.{i}.value"] = new long[] { Batch, o.Heads, past + Seq, o.HeadDim };
            }
        return shapes;
    }

    [Fact]
    public void Fp16_fixture_tracks_the_fp32_fixture()
    {
        // Same seed, same weights up to fp16 rounding: logits should agree to fp16-level error, not be arbitrary.
        var o = Variants["torch"] with { OutlierChannels = 3 };
        var feeds = FixtureFeeds.For(o, Batch, Seq);
        var fp32 = FixtureFeeds.Run(FixtureModels.Build(o), feeds)["logits"];
        var fp16 = FixtureFeeds.Run(FixtureModels.Build(o with { Fp16 = true }), feeds)["logits"];
        double error = FixtureFeeds.RelativeMaxError(fp16.Values, fp32.Values);
        Assert.InRange(error, 1e-6, 2e-2);
    }
}
