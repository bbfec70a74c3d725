namespace OnnxQuant.Numerics;

/// <summary>
/// The minimum of a loss over grid points 0..count-1 from a few of them: golden-section narrowing of the index range
/// (each step compares two interior points and drops the side of the larger loss), then every point of the last few.
/// Exact when the loss is unimodal along the grid; 20 points cost 9-11 evaluations instead of 20. The alpha and AWQ
/// ratio curves are not always unimodal, so the searches use it only when asked (docs/architecture.md, "Search cost"). Deterministic: the same
/// points in the same order for the same losses, ties going to the lower index.
/// </summary>
public static class BracketSearch
{
    /// <summary>Ranges of at most this many points are evaluated whole.</summary>
    private const int ExhaustiveSpan = 4;

    private const double GoldenFraction = 0.3819660112501051; // (3 - sqrt 5) / 2

    /// <summary>
    /// The index of the smallest loss found and the loss of every grid point (NaN where it was not evaluated).
    /// <paramref name="always"/> (optional) is evaluated first whatever the search does, e.g. the "no change" point.
    /// </summary>
    public static (int Best, double[] Losses) Minimize(int count, Func<int, double> loss, int? always = null)
    {
        if (count <= 0)
            throw new ArgumentOutOfRangeException(nameof(count), count, "a grid needs at least one point");
        var losses = new double[count];
        var done = new bool[count];
        double At(int i)
        {
            if (!done[i])
            {
                losses[i] = loss(i);
                done[i] = true;
            }
            return losses[i];
        }
        if (always is { } a)
            At(a);
        int lo = 0, hi = count - 1;
        while (hi - lo > ExhaustiveSpan)
        {
            int m1 = lo + (int)Math.Round((hi - lo) * GoldenFraction);
            int m2 = hi - (m1 - lo);
            if (m1 >= m2)
                break;
            // A unimodal minimum lies on the side of the smaller of two interior points (ties: the lower side).
            if (At(m1) <= At(m2))
                hi = m2;
            else
                lo = m1;
        }
        for (int i = lo; i <= hi; i++)
            At(i);
        int best = -1;
        for (int i = 0; i < count; i++)
            if (done[i] && (best < 0 || losses[i] < losses[best]))
                best = i;
        for (int i = 0; i < count; i++)
            if (!done[i])
                losses[i] = double.NaN;
        return (best, losses);
    }
}
