using Google.Protobuf;
using Onnx;
using OnnxQuant.Fixtures;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Fixtures;

/// <summary>Inputs for a fixture of any family, and small helpers to run fixtures in ONNX Runtime.</summary>
internal static class FixtureFeeds
{
    /// <summary>Seeded token ids in [0, vocab) and all-ones masks; GenAiLlama gets positions past..past+seq-1 and
    /// (with a KV cache) seeded past keys/values of length <paramref name="past"/>.</summary>
    public static Dictionary<string, OrtFeed> For(FixtureOptions o, int batch, int seq, int seed = 1, int past = 0, long[]? ids = null)
    {
        var rng = new FixtureRandom((ulong)seed);
        ids ??= Enumerable.Range(0, batch * seq).Select(_ => (long)rng.NextInt(o.Vocab)).ToArray();
        var feeds = new Dictionary<string, OrtFeed> { ["input_ids"] = OrtFeed.Int64(ids, batch, seq) };
        switch (o.Family)
        {
            case FixtureFamily.TorchLlama:
                if (o.AttentionMask) feeds["attention_mask"] = Ones(batch, seq);
                break;
            case FixtureFamily.GenAiLlama or FixtureFamily.OptimumLlama:
                feeds["attention_mask"] = Ones(batch, past + seq);
                feeds["position_ids"] = OrtFeed.Int64(Enumerable.Range(0, batch).SelectMany(_ => Enumerable.Range(past, seq).Select(p => (long)p)).ToArray(), batch, seq);
                if (o.HasPast)
                    for (int i = 0; i < o.Layers; i++)
                    {
                        int kv = o.KvHeadCount;
                        feeds[$"past_key_values.{i}.key"] = OrtFeed.Float(rng.Normal(batch * kv * past * o.HeadDim, 1.0), batch, kv, past, o.HeadDim);
                        feeds[$"past_key_values.{i}.value"] = OrtFeed.Float(rng.Normal(batch * kv * past * o.HeadDim, 1.0), batch, kv, past, o.HeadDim);
                    }
                break;
            case FixtureFamily.Bert:
                feeds["attention_mask"] = Ones(batch, seq);
                feeds["token_type_ids"] = OrtFeed.Int64(Enumerable.Range(0, batch * seq).Select(i => (long)(i % seq >= seq / 2 ? 1 : 0)).ToArray(), batch, seq);
                break;
        }
        return feeds;
    }

    public static OrtFeed Ones(int batch, int length) => OrtFeed.Int64(Enumerable.Repeat(1L, batch * length).ToArray(), batch, length);

    /// <summary>Runs <paramref name="proto"/> in ORT CPU, with <paramref name="extraOutputs"/> (intermediate values) added as graph outputs.</summary>
    public static Dictionary<string, OrtResult> Run(ModelProto proto, IReadOnlyDictionary<string, OrtFeed> feeds, params string[] extraOutputs)
    {
        if (extraOutputs.Length > 0)
        {
            proto = proto.Clone();
            foreach (var name in extraOutputs)
                proto.Graph.Output.Add(new ValueInfoProto { Name = name });
        }
        using var runner = new OrtRunner(proto.ToByteArray());
        return runner.Run(feeds);
    }

    /// <summary>Per-channel max |x| over all rows of a [..., channels] result.</summary>
    public static float[] ChannelAbsMax(OrtResult r)
    {
        int channels = (int)r.Shape[^1];
        var max = new float[channels];
        for (int i = 0; i < r.Values.Length; i++)
            max[i % channels] = Math.Max(max[i % channels], Math.Abs(r.Values[i]));
        return max;
    }

    public static float Median(IEnumerable<float> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>max |a - b| / max |b|.</summary>
    public static double RelativeMaxError(float[] a, float[] b)
    {
        Assert.Equal(b.Length, a.Length);
        double diff = 0, scale = 0;
        for (int i = 0; i < a.Length; i++)
        {
            diff = Math.Max(diff, Math.Abs(a[i] - b[i]));
            scale = Math.Max(scale, Math.Abs(b[i]));
        }
        return diff / scale;
    }
}
