using Microsoft.ML.OnnxRuntime;
using Onnx;
using OnnxQuant.Calibrate;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.Fixtures;
using OnnxQuant.Tests.Fixtures;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Calibrate;

/// <summary>Small calibration inputs and an independent reference: ORT run on the same windows, reduced by hand.</summary>
internal static class CalibrationTestSupport
{
    /// <summary>CPU, one thread, the optimisation level <see cref="OrtRunner"/> uses, so both see the same numbers.</summary>
    public static readonly SessionSettings Cpu = new() { Device = ExecutionDevice.Cpu, Threads = 1, Optimization = GraphOptimizationLevel.ORT_ENABLE_BASIC };

    public static CalibrationDataset RandomIds(int samples, int seq, int vocab, int seed = 7)
    {
        var rng = new Random(seed);
        var windows = Enumerable.Range(0, samples).Select(_ => Enumerable.Range(0, seq).Select(_ => rng.Next(vocab)).ToArray()).ToList();
        return new CalibrationDataset(windows, seq, "random ids", "none");
    }

    /// <summary>What calibration should find, computed directly: the activations as extra outputs, then plain loops.</summary>
    public static Dictionary<string, Reference> Direct(ModelProto proto, FixtureOptions o, CalibrationDataset data, IReadOnlyList<string> tensors)
    {
        var rows = tensors.ToDictionary(t => t, _ => new List<float[]>());
        foreach (var sample in data.Samples)
        {
            var outputs = FixtureFeeds.Run(proto, Feeds(o, sample), tensors.ToArray());
            foreach (var t in tensors)
            {
                var r = outputs[t];
                int c = (int)r.Shape[^1];
                for (int i = 0; i < r.Values.Length / c; i++)
                    rows[t].Add(r.Values.AsSpan(i * c, c).ToArray());
            }
        }
        return rows.ToDictionary(kv => kv.Key, kv => Reference.Of(kv.Value));
    }

    /// <summary>The feeds calibration promises: ids, ones, 0..n-1, zeros, an empty cache.</summary>
    public static Dictionary<string, OrtFeed> Feeds(FixtureOptions o, int[] sample)
    {
        int s = sample.Length;
        var feeds = FixtureFeeds.For(o, 1, s, ids: sample.Select(x => (long)x).ToArray(), past: 0);
        if (o.Family == FixtureFamily.Bert)
            feeds["token_type_ids"] = OrtFeed.Int64(new long[s], 1, s);
        return feeds;
    }

    public static CalibrationResult CalibrateFixture(Onnx.ModelProto proto, CalibrationDataset data, CalibrationOptions? options = null)
    {
        using var model = OnnxQuant.IO.OnnxModel.FromProto(proto);
        return Calibrator.Run(model, data, options ?? new CalibrationOptions(), Cpu);
    }

    public static float RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        double worst = 0, scale = 1e-12;
        for (int i = 0; i < expected.Length; i++)
            scale = Math.Max(scale, Math.Abs(expected[i]));
        for (int i = 0; i < expected.Length; i++)
            worst = Math.Max(worst, Math.Abs(actual[i] - expected[i]));
        return (float)(worst / scale);
    }
}

/// <summary>Statistics of one tensor reduced with plain loops in double precision.</summary>
internal sealed record Reference(float[] AbsMax, float[] MeanAbs, float Min, float Max, List<float[]> Rows)
{
    public static Reference Of(List<float[]> rows)
    {
        int c = rows[0].Length;
        var absMax = new float[c];
        var sum = new double[c];
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (var row in rows)
            for (int j = 0; j < c; j++)
            {
                absMax[j] = Math.Max(absMax[j], Math.Abs(row[j]));
                sum[j] += Math.Abs(row[j]);
                min = Math.Min(min, row[j]);
                max = Math.Max(max, row[j]);
            }
        return new Reference(absMax, sum.Select(x => (float)(x / rows.Count)).ToArray(), min, max, rows);
    }
}
