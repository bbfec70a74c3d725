using OnnxQuant.Numerics;

namespace OnnxQuant.Tests.Numerics;

public class BracketSearchTests
{
    [Fact]
    public void FindsTheGridMinimumOfEveryConvexCurveWithFewerEvaluations()
    {
        var rng = new Random(11);
        int worstEvaluations = 0;
        foreach (int count in new[] { 1, 2, 5, 14, 20, 41 })
            for (int trial = 0; trial < 200; trial++)
            {
                // A parabola (or a V) with its minimum anywhere, edges and beyond included.
                double center = rng.NextDouble() * (count + 4) - 2, curvature = 0.01 + rng.NextDouble();
                bool vee = trial % 2 == 1;
                double Curve(int i) => vee ? Math.Abs(i - center) * curvature : (i - center) * (i - center) * curvature;
                int calls = 0;
                var (best, losses) = BracketSearch.Minimize(count, i => { calls++; return Curve(i); });
                int expected = Enumerable.Range(0, count).OrderBy(Curve).ThenBy(i => i).First();
                Assert.Equal(expected, best);
                Assert.Equal(Curve(best), losses[best]);
                Assert.Equal(calls, losses.Count(l => !double.IsNaN(l))); // no point evaluated twice
                if (count == 20)
                    worstEvaluations = Math.Max(worstEvaluations, calls);
            }
        Assert.InRange(worstEvaluations, 1, 11); // against 20 for the full grid
    }

    [Fact]
    public void TheAlwaysPointIsEvaluatedAndCanWin()
    {
        // Minimum at an interior point, but index 0 is lower still: a search that skipped it would miss it.
        double[] curve = [0.1, 5, 4, 3, 2, 1, 2, 3, 4, 5, 6, 7];
        var (best, losses) = BracketSearch.Minimize(curve.Length, i => curve[i], always: 0);
        Assert.Equal(0, best);
        Assert.Equal(0.1, losses[0]);
        var (without, _) = BracketSearch.Minimize(curve.Length, i => curve[i]);
        Assert.Equal(5, without);
    }
}
