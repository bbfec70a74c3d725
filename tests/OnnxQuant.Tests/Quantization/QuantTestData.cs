namespace OnnxQuant.Tests.Quantization;

/// <summary>Seeded random weights and activations, and reference arithmetic in double precision.</summary>
internal static class QuantTestData
{
    /// <summary>
    /// A [K, N] weight of Gaussian values whose per-column spread varies over two orders of magnitude, with an
    /// occasional outlier, so blocks differ in scale and sign balance.
    /// </summary>
    public static float[] Weight(int k, int n, int seed)
    {
        var rng = new Random(seed);
        var columnScale = new double[n];
        for (int j = 0; j < n; j++) columnScale[j] = Math.Pow(10, rng.NextDouble() * 2 - 1.5);
        var w = new float[k * n];
        for (int r = 0; r < k; r++)
            for (int j = 0; j < n; j++)
            {
                double v = Gaussian(rng) * columnScale[j];
                if (rng.NextDouble() < 0.01) v *= 8;
                w[r * n + j] = (float)v;
            }
        return w;
    }

    public static float[] Activations(int m, int k, int seed)
    {
        var rng = new Random(seed);
        var x = new float[m * k];
        for (int i = 0; i < x.Length; i++) x[i] = (float)Gaussian(rng);
        return x;
    }

    public static float[] Bias(int n, int seed)
    {
        var rng = new Random(seed);
        var b = new float[n];
        for (int i = 0; i < n; i++) b[i] = (float)(rng.NextDouble() * 2 - 1);
        return b;
    }

    /// <summary>x [M, K] · w [K, N] (+ bias [N]) in double, computed directly from the definition.</summary>
    public static double[] MatMul(float[] x, float[] w, int m, int k, int n, float[]? bias)
    {
        var y = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = bias?[j] ?? 0;
                for (int t = 0; t < k; t++) sum += (double)x[i * k + t] * w[t * n + j];
                y[i * n + j] = sum;
            }
        return y;
    }

    /// <summary>Rounds every value through float16, as an fp16 model input or output holds it.</summary>
    public static float[] ThroughHalf(float[] values) => values.Select(v => (float)(Half)v).ToArray();

    public static double MaxAbs(IEnumerable<double> values) => values.Max(Math.Abs);

    /// <summary>A standard normal draw (Box-Muller).</summary>
    public static double Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
