using OnnxQuant.Awq;
using OnnxQuant.Numerics;
using OnnxQuant.Quantization;
using Xunit.Abstractions;

namespace OnnxQuant.Tests.Awq;

/// <summary>AWQ's scale search with its loss on a sample of a wide group's columns (ColumnSample).</summary>
public sealed class AwqColumnSampleTests
{
    private readonly ITestOutputHelper _output;

    public AwqColumnSampleTests(ITestOutputHelper output) => _output = output;

    // Two consumers of 2048 columns (twice the sample): the ratio chosen on every second column, judged by the loss over
    // every column, is within 2% of the whole-group search's best, over seeds, with and without duo scaling.
    [Theory]
    [InlineData(1, false)]
    [InlineData(2, true)]
    [InlineData(3, true)]
    public void TheSampledLossChoosesAsWellAsTheWholeGroup(int seed, bool duo)
    {
        var rng = new Random(seed);
        int r = 64, k = 128, n = 2048;
        var (x, meanAbs) = AwqTestData.OutlierRows(rng, r, k, [3, 40, 99], 30f);
        var consumers = new[] { new AwqWeight("a", AwqTestData.Gaussian(rng, k * n, 0.05f), n), new AwqWeight("b", AwqTestData.Gaussian(rng, k * n, 0.05f), n) };
        var options = new AwqOptions { Quantization = new Int4QuantOptions { BlockSize = 32 }, DuoScaling = duo };
        var rows = MatrixView.Of(x, r, k);

        var whole = AwqScaleSearch.Search(rows, meanAbs, consumers, options);
        int stride = ColumnSample.Stride(2L * n);
        Assert.Equal(2, stride);
        var sampled = consumers.Select(c => c with { Values = ColumnSample.Take(c.Values, k, c.N, stride, out int m), N = m }).ToList();
        long outputs = (long)r * sampled.Sum(c => c.N);
        var chosen = AwqScaleSearch.Search(rows, meanAbs, consumers, options, s => AwqScaleSearch.GroupOutputLoss(rows, sampled, s, options) / outputs);

        double LossOverEveryColumn(float[] s) => AwqScaleSearch.GroupOutputLoss(rows, consumers, s, options) / (r * 2.0 * n);
        double best = LossOverEveryColumn(whole.Scales), picked = LossOverEveryColumn(chosen.Scales);
        _output.WriteLine($"whole: r {whole.Ratio}, loss {best:g5}; sampled: r {chosen.Ratio}, loss {picked:g5} (RTN {whole.RtnLoss:g5})");
        Assert.True(whole.Ratio > 0f);
        Assert.True(picked <= 1.02 * best, $"sampled choice loss {picked:g5} vs whole-group {best:g5}");
    }
}
