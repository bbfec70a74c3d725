using OnnxQuant.Awq;
using OnnxQuant.Numerics;
using OnnxQuant.Quantization;

namespace OnnxQuant.Tests.Awq;

public class AwqSearchTests
{
    private static readonly Int4QuantOptions Q32 = new() { BlockSize = 32 };

    [Fact]
    public void SquaredErrorMatchesDirectComputation()
    {
        var rng = new Random(11);
        int r = 40, k = 100, n = 300;   // K not a multiple of the block; N over one chunk of panels
        var x = AwqTestData.Gaussian(rng, r * k, 1f);
        var w = AwqTestData.Gaussian(rng, k * n, 0.05f);
        var s = new float[k];
        for (int j = 0; j < k; j++) s[j] = 0.5f + (float)rng.NextDouble();

        double rtn = QuantizationError.SquaredError(MatrixView.Of(x, r, k), w, n, default, Q32);
        double scaled = QuantizationError.SquaredError(MatrixView.Of(x, r, k), w, n, s, Q32);

        Assert.Equal(DirectError(x, w, r, k, n, null), rtn, 1e-4 * rtn);
        Assert.Equal(DirectError(x, w, r, k, n, s), scaled, 1e-4 * scaled);
        Assert.NotEqual(rtn, scaled, 1e-3 * rtn);
    }

    [Fact]
    public void BlockErrorsMatchDirectComputation()
    {
        var rng = new Random(12);
        int r = 24, k = 70, n = 45, kBlocks = 3;
        var x = AwqTestData.Gaussian(rng, r * k, 1f);
        var w = AwqTestData.Gaussian(rng, k * n, 0.05f);
        var ratios = Enumerable.Range(0, n).Select(i => 0.6f + 0.4f * i / n).ToArray();
        var errors = new float[n * kBlocks];
        QuantizationError.BlockSquaredErrors(BlockGrams.Create(MatrixView.Of(x, r, k), 32), w, n, Q32, ratios, errors);

        var q = w.ToArray();
        Int4BlockQuantizer.FakeQuantizeInPlace(q, k, n, Q32, ratios);
        for (int col = 0; col < n; col++)
            for (int g = 0; g < kBlocks; g++)
            {
                double expected = 0;
                for (int row = 0; row < r; row++)
                {
                    double e = 0;
                    for (int j = g * 32; j < Math.Min(k, g * 32 + 32); j++)
                        e += (double)x[row * k + j] * (w[j * n + col] - q[j * n + col]);
                    expected += e * e;
                }
                Assert.Equal(expected, errors[col * kBlocks + g], 1e-4 * expected + 1e-12);
            }
    }

    [Fact]
    public void CandidateScalesAreNormalisedPowersOfTheChannelMeans()
    {
        var x = new[] { 0.5f, 2f, 8f, 1f };
        var s = AwqScaleSearch.CandidateScales(x, default, 0.5f);
        Assert.Equal(1f, MathF.Sqrt(s.Max() * s.Min()), 5);
        // Ratios between channels are (x_i / x_j)^r.
        Assert.Equal(MathF.Pow(8f / 0.5f, 0.5f), s[2] / s[0], 4);
        Assert.Equal(MathF.Pow(2f, 0.5f), s[1] / s[3], 4);
    }

    // The point of AWQ: with a few salient activation channels, scaling their weight rows up before 4-bit rounding
    // protects them, and the group's output error drops well below round-to-nearest.
    [Fact]
    public void SearchBeatsRoundToNearestOnOutlierChannels()
    {
        var rng = new Random(5);
        int r = 128, k = 256, n1 = 96, n2 = 64;
        var (x, meanAbs) = AwqTestData.OutlierRows(rng, r, k, new[] { 3, 77, 200 }, 40f);
        var consumers = new[]
        {
            new AwqWeight("a", AwqTestData.Gaussian(rng, k * n1, 0.05f), n1),
            new AwqWeight("b", AwqTestData.Gaussian(rng, k * n2, 0.05f), n2),
        };
        var options = new AwqOptions { Quantization = Q32, DuoScaling = false };
        var result = AwqScaleSearch.Search(MatrixView.Of(x, r, k), meanAbs, consumers, options);

        double rtn = AwqScaleSearch.GroupOutputLoss(MatrixView.Of(x, r, k), consumers, Enumerable.Repeat(1f, k).ToArray(), options) / (r * (n1 + n2));
        Assert.Equal(rtn, result.RtnLoss, 1e-9 * rtn);
        Assert.Equal(20, result.Losses.Count);
        Assert.True(result.Ratio > 0f, $"chose r = {result.Ratio}");
        Assert.True(result.BestLoss < 0.6 * result.RtnLoss, $"AWQ {result.BestLoss:g4} vs RTN {result.RtnLoss:g4}");
        // The outlier channels get the largest scales.
        var top = result.Scales.Select((v, i) => (v, i)).OrderByDescending(t => t.v).Take(3).Select(t => t.i).Order();
        Assert.Equal(new[] { 3, 77, 200 }, top);
    }

    [Fact]
    public void DuoScalingAlsoBeatsRoundToNearest()
    {
        var rng = new Random(6);
        int r = 96, k = 128, n = 64;
        var (x, meanAbs) = AwqTestData.OutlierRows(rng, r, k, new[] { 10, 90 }, 30f);
        var consumers = new[] { new AwqWeight("a", AwqTestData.Gaussian(rng, k * n, 0.05f), n) };
        var result = AwqScaleSearch.Search(MatrixView.Of(x, r, k), meanAbs, consumers, new AwqOptions { Quantization = Q32, DuoScaling = true });
        Assert.True(result.BestLoss < 0.7 * result.RtnLoss, $"AWQ {result.BestLoss:g4} vs RTN {result.RtnLoss:g4}");
    }

    [Theory]
    [InlineData(Int4Scheme.Asymmetric)]
    [InlineData(Int4Scheme.Symmetric)]
    public void ClampedWeightQuantizesLikeClipRatios(Int4Scheme scheme)
    {
        var rng = new Random(7);
        int k = 80, n = 50;
        var options = new Int4QuantOptions { BlockSize = 32, Scheme = scheme };
        var w = AwqTestData.Gaussian(rng, k * n, 0.1f);
        for (int i = 0; i < 40; i++) w[rng.Next(w.Length)] *= 6f;   // a few long tails for the clip to cut
        var ratios = new float[n * 3];
        for (int i = 0; i < ratios.Length; i++) ratios[i] = i % 4 == 0 ? 1f : 0.5f + 0.5f * (float)rng.NextDouble();

        var expected = Int4BlockQuantizer.Quantize(w, k, n, options, ratios);
        var clamped = w.ToArray();
        AwqClipSearch.ApplyClip(clamped, k, n, ratios, options);
        var actual = Int4BlockQuantizer.Quantize(clamped, k, n, options);

        Assert.Equal(expected.Scales, actual.Scales);
        Assert.Equal(expected.ZeroPoints, actual.ZeroPoints);
        int differing = expected.Codes.Zip(actual.Codes).Count(p => p.First != p.Second);
        Assert.True(differing <= expected.Codes.Length / 2000, $"{differing} codes differ");
        Assert.True(clamped.Zip(w).Count(p => p.First != p.Second) > 10, "nothing was clamped");
    }

    [Fact]
    public void ClipSearchNeverRaisesTheBlockErrorAndClipsLongTails()
    {
        var rng = new Random(8);
        int r = 64, k = 64, n = 40;
        var x = AwqTestData.Gaussian(rng, r * k, 1f);
        var w = AwqTestData.Gaussian(rng, k * n, 0.05f);
        for (int col = 0; col < n; col++) w[rng.Next(k) * n + col] = 0.6f;   // one far outlier per column
        var result = AwqClipSearch.Search(MatrixView.Of(x, r, k), w, n, new AwqOptions { Quantization = Q32 });

        Assert.True(result.ClippedError < 0.9 * result.UnclippedError, $"{result.ClippedError:g4} vs {result.UnclippedError:g4}");
        Assert.True(result.ClippedFraction > 0.2, $"only {result.ClippedFraction:P0} of blocks clipped");
        Assert.All(result.Ratios, v => Assert.InRange(v, 0.5f, 1f));
    }

    private static double DirectError(float[] x, float[] w, int r, int k, int n, float[]? s)
    {
        var scaled = new float[k * n];
        for (int j = 0; j < k; j++)
            for (int c = 0; c < n; c++)
                scaled[j * n + c] = w[j * n + c] * (s?[j] ?? 1f);
        Int4BlockQuantizer.FakeQuantizeInPlace(scaled, k, n, Q32);
        double total = 0;
        for (int row = 0; row < r; row++)
            for (int c = 0; c < n; c++)
            {
                double e = 0;
                for (int j = 0; j < k; j++)
                    e += (double)x[row * k + j] * (w[j * n + c] - scaled[j * n + c] / (s?[j] ?? 1f));
                total += e * e;
            }
        return total;
    }
}

internal static class AwqTestData
{
    public static float[] Gaussian(Random rng, int count, float sigma)
    {
        var v = new float[count];
        for (int i = 0; i < count; i++)
            v[i] = sigma * (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        return v;
    }

    /// <summary>Rows [r, k] of unit Gaussians whose <paramref name="outliers"/> channels are <paramref name="factor"/> times larger.</summary>
    public static (float[] Rows, float[] MeanAbs) OutlierRows(Random rng, int r, int k, int[] outliers, float factor)
    {
        var x = Gaussian(rng, r * k, 1f);
        foreach (var j in outliers)
            for (int row = 0; row < r; row++) x[row * k + j] *= factor;
        var meanAbs = new float[k];
        for (int row = 0; row < r; row++)
            for (int j = 0; j < k; j++) meanAbs[j] += MathF.Abs(x[row * k + j]) / r;
        return (x, meanAbs);
    }
}
