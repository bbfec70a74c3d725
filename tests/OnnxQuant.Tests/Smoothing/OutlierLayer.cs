namespace OnnxQuant.Tests.Smoothing;

/// <summary>
/// A random linear with activation outliers for the alpha search's tests: rows uniform in [-1, 1] with channel k scaled
/// by <c>scale(k)</c>, weights uniform in [-1, 1], and the per-channel maxima the search reads.
/// </summary>
internal static class OutlierLayer
{
    public static (float[] X, float[] W, float[] AbsMax, float[] WMax) Make(int seed, int rows, int k, int n, Func<int, float> scale)
    {
        var random = new Random(seed);
        var x = new float[rows * k];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < k; c++)
                x[r * k + c] = (float)(random.NextDouble() * 2 - 1) * scale(c);
        var w = Enumerable.Range(0, k * n).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var absMax = new float[k];
        var wMax = new float[k];
        for (int c = 0; c < k; c++)
        {
            for (int r = 0; r < rows; r++) absMax[c] = Math.Max(absMax[c], Math.Abs(x[r * k + c]));
            for (int j = 0; j < n; j++) wMax[c] = Math.Max(wMax[c], Math.Abs(w[c * n + j]));
        }
        return (x, w, absMax, wMax);
    }
}
