using OnnxQuant.Smoothing;

namespace OnnxQuant.Tests.Smoothing;

public class SmoothQuantMathTests
{
    [Fact]
    public void ScaleFollowsTheSmoothQuantFormula()
    {
        float[] x = [8f, 1f, 0f, 2f], w = [2f, 4f, 1f, 0f];
        var s = SmoothQuantScales.Compute(x, w, 0.5f);
        Assert.Equal(2f, s[0], 5);          // sqrt(8) / sqrt(2)
        Assert.Equal(0.5f, s[1], 5);        // sqrt(1) / sqrt(4)
        Assert.Equal(1f, s[2]);             // dead activation channel: nothing to balance
        Assert.Equal(1f, s[3]);             // all-zero weight row
        var s8 = SmoothQuantScales.Compute(x, w, 0.8f);
        Assert.Equal(MathF.Pow(8f, 0.8f) / MathF.Pow(2f, 0.2f), s8[0], 4);
    }

    [Fact]
    public void ScaleIsClampedFromBelow()
    {
        var s = SmoothQuantScales.Compute([1e-12f], [1e6f], 0.5f);
        Assert.Equal(SmoothQuantScales.MinScale, s[0]);
    }

    [Fact]
    public void MaxOverMedianMeasuresTheWorstChannel()
    {
        Assert.Equal(10f, SmoothQuantScales.MaxOverMedian([1f, 1f, 2f, 20f, 2f]), 5);
        Assert.Equal(1f, SmoothQuantScales.MaxOverMedian([3f, 3f, 3f]), 5);
    }

    // One channel 60x the others: static per-tensor int8 wastes its levels on it, smoothing moves the range into the
    // weights. The search must find an alpha whose loss beats no smoothing by a wide margin, and pick the curve's minimum.
    [Fact]
    public void SearchBeatsNoSmoothingOnAnOutlierChannel()
    {
        const int Rows = 256, K = 32, N = 24;
        var (x, w, absMax, wMax) = OutlierLayer.Make(5, Rows, K, N, k => k == 3 ? 60f : 1f);
        var choice = AlphaSearch.Run(x, Rows, absMax, [new SearchWeight("w", w, K, N)], wMax, new FakeQuantScheme(), bracketed: true);
        Assert.NotNull(choice.Alpha);
        Assert.True(choice.Error * 5 < choice.UnsmoothedError, $"searched loss {choice.Error:E2} vs unsmoothed {choice.UnsmoothedError:E2}");
        Assert.Equal(choice.Curve.Min(c => c.Error), choice.Error);
        // The bracketing search evaluates fewer alphas than the grid holds and lands on the full grid's choice.
        var full = AlphaSearch.Run(x, Rows, absMax, [new SearchWeight("w", w, K, N)], wMax, new FakeQuantScheme());
        Assert.Equal(AlphaSearch.DefaultGrid.Count, full.Curve.Count);
        Assert.InRange(choice.Curve.Count, 3, AlphaSearch.DefaultGrid.Count - 4);
        Assert.Equal(full.Alpha, choice.Alpha);
        Assert.Equal(full.Error, choice.Error);
    }
}
