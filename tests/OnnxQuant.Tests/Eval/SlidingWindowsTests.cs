using OnnxQuant.Calibrate.Evaluation;

namespace OnnxQuant.Tests.Eval;

public class SlidingWindowsTests
{
    [Theory]
    [InlineData(1000, 256, 256, 3, 765)]
    [InlineData(1000, 256, 128, 6, 895)]
    [InlineData(1000, 256, 1, 745, 999)]
    [InlineData(2048, 256, 256, 8, 2040)]
    [InlineData(100, 256, 64, 1, 99)]
    public void EveryTokenUpToTheLastWholeWindowIsScoredOnceExceptWindowStartsWithoutOverlap(int tokens, int context, int stride, int windows, int scored)
    {
        var plan = SlidingWindows.Plan(tokens, context, stride);

        Assert.Equal(windows, plan.Count);
        Assert.Equal(scored, plan.Sum(w => w.ScoredTokens));
        var counts = new int[tokens];
        foreach (var w in plan)
        {
            Assert.True(w.Start + w.Length <= tokens);
            Assert.True(w.FirstScored >= 1, "position 0 of a window has no context inside it");
            for (int p = w.FirstScored; p < w.Length; p++)
                counts[w.Start + p]++;
        }
        int end = plan[^1].Start + plan[^1].Length;
        Assert.Equal(0, counts[0]);
        // Without overlap (stride = context) a window's first token has no context inside the window and is not scored.
        for (int t = 1; t < end; t++)
            Assert.Equal(stride == context && t % context == 0 ? 0 : 1, counts[t]);
        Assert.All(counts[end..], c => Assert.Equal(0, c));
    }

    [Fact]
    public void LaterWindowsKeepContextMinusStrideTokensOfContext()
    {
        var plan = SlidingWindows.Plan(4096, 512, 128);

        Assert.Equal(new ScoredWindow(0, 512, 1), plan[0]);
        Assert.All(plan.Skip(1), w => Assert.Equal(384, w.FirstScored));
        Assert.Equal(Enumerable.Range(0, plan.Count).Select(i => i * 128), plan.Select(w => w.Start));
    }

    [Theory]
    [InlineData(1000, 256, 0)]
    [InlineData(1000, 256, 257)]
    [InlineData(1000, 1, 1)]
    [InlineData(1, 256, 256)]
    public void RefusesImpossiblePlans(int tokens, int context, int stride)
    {
        var e = Assert.Throws<OnnxQuantException>(() => SlidingWindows.Plan(tokens, context, stride));
        Assert.Equal(tokens < 2 ? ExitCode.BadInput : ExitCode.Usage, e.ExitCode);
    }
}
