using OnnxQuant.Numerics;
using OnnxQuant.Smoothing;
using Xunit.Abstractions;

namespace OnnxQuant.Tests.Smoothing;

/// <summary>The alpha search on a sample of a wide group's output columns (ColumnSample.MaxColumns).</summary>
public sealed class SearchColumnSampleTests
{
    private readonly ITestOutputHelper _output;

    public SearchColumnSampleTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public void SampledColumnsAreEveryStrideThColumnOfEachRow()
    {
        var w = new SearchWeight("w", Enumerable.Range(0, 3 * 7).Select(i => (float)i).ToArray(), 3, 7);
        var sampled = AlphaSearch.SampleColumns(w, 3);
        Assert.Equal(3, sampled.N);   // columns 0, 3, 6
        Assert.Equal([0f, 3f, 6f, 7f, 10f, 13f, 14f, 17f, 20f], sampled.KN);
        Assert.Same(w, AlphaSearch.SampleColumns(w, 1));
        Assert.Equal(1, ColumnSample.Stride(ColumnSample.MaxColumns));
        Assert.Equal(2, ColumnSample.Stride(ColumnSample.MaxColumns + 1));
        Assert.Equal(11, ColumnSample.Stride(11008 + 11008));   // a 7B's gate + up
    }

    // A group three times wider than the sample (three consumers of 2048 columns, one outlier channel among others of
    // varied size): the alpha chosen on the sample, judged by the loss over every column, is within 2% of the best the
    // whole-group search finds, over seeds, with and without float channels.
    [Theory]
    [InlineData(1, 0)]
    [InlineData(2, 0)]
    [InlineData(3, 4)]
    [InlineData(4, 4)]
    public void TheSampledSearchChoosesAsWellAsTheWholeGroup(int seed, int floatChannels)
    {
        const int Rows = 128, K = 64, N = 2048;
        var random = new Random(seed);
        var scales = Enumerable.Range(0, K).Select(c => c == 5 ? 40f : (float)(0.2 + 2 * random.NextDouble())).ToArray();
        var (x, _, absMax, _) = OutlierLayer.Make(seed, Rows, K, N, c => scales[c]);
        var weights = Enumerable.Range(0, 3).Select(i => new SearchWeight($"w{i}", OutlierLayer.Make(seed * 10 + i, 1, K, N, _ => 1f).W, K, N)).ToList();
        var wMax = new float[K];
        foreach (var w in weights)
            for (int c = 0; c < K; c++)
                wMax[c] = Math.Max(wMax[c], w.KN.AsSpan(c * N, N).ToArray().Max(Math.Abs));
        var scheme = new FakeQuantScheme { MaxFloatChannels = floatChannels };

        var whole = AlphaSearch.Run(x, Rows, absMax, weights, wMax, scheme);
        int stride = ColumnSample.Stride(3L * N);
        Assert.Equal(3, stride);
        var sampled = AlphaSearch.Run(x, Rows, absMax, weights.Select(w => AlphaSearch.SampleColumns(w, stride)).ToList(), wMax, scheme);

        double LossOverEveryColumn(AlphaChoice c)
        {
            var references = weights.Select(w => MatrixMultiply.Multiply(MatrixView.Of(x, Rows, K), MatrixView.Of(w.KN, K, N))).ToList();
            var kept = (float[])absMax.Clone();
            var wKept = (float[])wMax.Clone();
            foreach (int j in c.FloatChannels) (kept[j], wKept[j]) = (0, 0);
            var s = c.Alpha is { } a ? SmoothQuantScales.Compute(kept, wKept, a) : null;
            return AlphaSearch.Error(x, Rows, absMax, weights, references, s, scheme, c.FloatChannels);
        }
        double best = LossOverEveryColumn(whole), chosen = LossOverEveryColumn(sampled);
        _output.WriteLine($"whole: alpha {whole.Alpha}, {whole.FloatChannels.Count} float, loss {best:g5}; sampled: alpha {sampled.Alpha}, {sampled.FloatChannels.Count} float, loss {chosen:g5}");
        Assert.Equal(whole.Error, best, 1e-9 * best);
        Assert.True(chosen <= 1.02 * best, $"sampled choice loss {chosen:g5} vs whole-group {best:g5}");
    }
}
