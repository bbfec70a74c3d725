using FsCheck.Xunit;
using OnnxQuant.Gptq;
using OnnxQuant.Numerics;
using OnnxQuant.Quantization;

namespace OnnxQuant.Tests.Quantization;

/// <summary>GPTQ: the factorisation against plain references, the rounding against a straightforward GPTQ, and its point (less output error than RTN).</summary>
public class GptqTests
{
    [Fact]
    public void CholeskyFactorReproducesTheMatrixAndMatchesTheTextbookFactor()
    {
        int n = 37;
        var a = SpdMatrix(n, seed: 3);
        var l = (float[])a.Clone();
        Assert.True(Cholesky.TryFactorInPlace(l, n));
        var reference = ReferenceCholesky(a.Select(v => (double)v).ToArray(), n);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                Assert.True(Math.Abs(l[i * n + j] - reference[i * n + j]) <= 1e-4 * Math.Max(1, Math.Abs(reference[i * n + j])), $"L[{i},{j}] = {l[i * n + j]}, reference {reference[i * n + j]}");
        // And a non-positive-definite matrix is refused, not factored into NaNs.
        var bad = new float[] { 1, 2, 2, 1 };
        Assert.False(Cholesky.TryFactorInPlace(bad, 2));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void FactorIsTheUpperCholeskyFactorOfTheDampenedInverse(bool actOrder)
    {
        int k = 24;
        var x = CorrelatedRows(200, k, seed: 5);
        var options = new GptqOptions { ActOrder = actOrder };
        var factor = HessianFactor.FromRows(MatrixView.Of(x, 200, k), options);

        // Reference: H = XᵀX / R in double, dampened by 1% of the mean diagonal, permuted, inverted by Gauss-Jordan,
        // then the textbook Cholesky of the inverse, transposed to upper.
        var h = new double[k * k];
        for (int r = 0; r < 200; r++)
            for (int i = 0; i < k; i++)
                for (int j = 0; j < k; j++) h[i * k + j] += (double)x[r * k + i] * x[r * k + j] / 200;
        double mean = Enumerable.Range(0, k).Average(i => h[i * k + i]);
        var order = actOrder ? Enumerable.Range(0, k).OrderByDescending(i => h[i * k + i]).ToArray() : Enumerable.Range(0, k).ToArray();
        Assert.Equal(order, factor.Order ?? Enumerable.Range(0, k).ToArray());
        var permuted = new double[k * k];
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++) permuted[a * k + b] = h[order[a] * k + order[b]] + (a == b ? 0.01 * mean : 0);
        var lower = ReferenceCholesky(Invert(permuted, k), k);
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
            {
                double expected = j >= i ? lower[j * k + i] : 0;
                Assert.True(Math.Abs(factor.Upper[i * k + j] - expected) <= 2e-3 * Math.Max(1e-3, Math.Abs(lower[i * k + i])), $"U[{i},{j}] = {factor.Upper[i * k + j]}, reference {expected}");
            }
    }

    [Theory]
    [InlineData(16, 5, 16, false, 1)]
    [InlineData(40, 6, 16, false, 2)]   // groups inside lazy blocks of 16, short last group
    [InlineData(32, 4, 16, true, 3)]    // act-order with static groups
    public void RoundingEqualsAStraightforwardGptq(int k, int n, int group, bool actOrder, int seed)
    {
        var w = QuantTestData.Weight(k, n, seed);
        var x = CorrelatedRows(120, k, seed + 10);
        var options = new Int4QuantOptions { BlockSize = group };
        var factor = HessianFactor.FromRows(MatrixView.Of(x, 120, k), new GptqOptions { ActOrder = actOrder });
        // Lazy blocks of 16 so the batched update between blocks is exercised.
        var q = GptqQuantizer.Quantize(w, k, n, factor, options, bits: 4, lazyBlock: 16);
        var expected = ReferenceGptq(w, k, n, x, 120, group, actOrder);
        Assert.Equal(expected, q.Dequantize().Select(v => (double)v).ToArray(), new Close(1e-5));
    }

    [Fact]
    public void WithUncorrelatedInputsGptqIsExactlyRoundToNearest()
    {
        // H diagonal: no error is passed on, so GPTQ must give RTN's codes, scales and zero points bit for bit.
        int k = 200, n = 48;
        var w = QuantTestData.Weight(k, n, 9);
        var h = new float[k * k];
        for (int i = 0; i < k; i++) h[i * k + i] = 1 + i % 7;
        var factor = HessianFactor.Factor(h, k, new GptqOptions());
        foreach (var scheme in new[] { Int4Scheme.Asymmetric, Int4Scheme.Symmetric })
        {
            var options = new Int4QuantOptions { BlockSize = 64, Scheme = scheme };
            var gptq = GptqQuantizer.Quantize(w, k, n, factor, options, bits: 4);
            var rtn = Int4BlockQuantizer.Quantize(w, k, n, options);
            Assert.Equal(rtn.Codes, gptq.Codes);
            Assert.Equal(rtn.Scales, gptq.Scales);
            Assert.Equal(rtn.ZeroPoints, gptq.ZeroPoints);
        }
    }

    [Property(MaxTest = 25)]
    public bool GptqLowersTheCalibrationOutputErrorBelowRtn(byte kDraw, byte nDraw, bool actOrder, bool symmetric, int seed)
    {
        int k = 64 + kDraw % 4 * 32, n = 8 + nDraw % 24, rows = 256;
        var w = QuantTestData.Weight(k, n, seed);
        var x = CorrelatedRows(rows, k, seed ^ 0x5eed);
        var options = new Int4QuantOptions { BlockSize = 32, Scheme = symmetric ? Int4Scheme.Symmetric : Int4Scheme.Asymmetric };
        var factor = HessianFactor.FromRows(MatrixView.Of(x, rows, k), new GptqOptions { ActOrder = actOrder });
        double gptq = OutputError(x, rows, w, GptqQuantizer.Quantize(w, k, n, factor, options, 4).Dequantize(), k, n);
        double rtn = OutputError(x, rows, w, Int4BlockQuantizer.Quantize(w, k, n, options).Dequantize(), k, n);
        return gptq < rtn;
    }

    [Fact]
    public void GptqIsDeterministicAndBeatsRtnClearlyOnCorrelatedInputs()
    {
        int k = 384, n = 256, rows = 512;
        var w = QuantTestData.Weight(k, n, 21);
        var x = CorrelatedRows(rows, k, 22);
        var options = new Int4QuantOptions { BlockSize = 128 };
        var factor = HessianFactor.FromRows(MatrixView.Of(x, rows, k), new GptqOptions());
        var first = GptqQuantizer.Quantize(w, k, n, factor, options, 4);
        var second = GptqQuantizer.Quantize(w, k, n, HessianFactor.FromRows(MatrixView.Of(x, rows, k), new GptqOptions()), options, 4);
        Assert.Equal(first.Codes, second.Codes);
        Assert.Equal(first.Scales, second.Scales);
        double gptq = OutputError(x, rows, w, first.Dequantize(), k, n);
        double rtn = OutputError(x, rows, w, Int4BlockQuantizer.Quantize(w, k, n, options).Dequantize(), k, n);
        Assert.True(gptq < 0.7 * rtn, $"GPTQ output error {gptq:g4} vs RTN {rtn:g4}");
    }

    internal static double OutputError(float[] x, int rows, float[] w, float[] q, int k, int n)
    {
        double total = 0;
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < n; j++)
            {
                double e = 0;
                for (int i = 0; i < k; i++) e += (double)x[r * k + i] * (w[i * n + j] - q[i * n + j]);
                total += e * e;
            }
        return total;
    }

    /// <summary>Rows x = z M with a random mixing M and uneven channel scales: inputs correlated like real activations.</summary>
    internal static float[] CorrelatedRows(int rows, int k, int seed)
    {
        var rng = new Random(seed);
        int latent = Math.Max(4, k / 3);
        var mix = new double[latent * k];
        for (int i = 0; i < mix.Length; i++) mix[i] = QuantTestData.Gaussian(rng);
        var scale = Enumerable.Range(0, k).Select(_ => Math.Exp(QuantTestData.Gaussian(rng))).ToArray();
        var x = new float[rows * k];
        var z = new double[latent];
        for (int r = 0; r < rows; r++)
        {
            for (int t = 0; t < latent; t++) z[t] = QuantTestData.Gaussian(rng);
            for (int c = 0; c < k; c++)
            {
                double v = 0.1 * QuantTestData.Gaussian(rng);
                for (int t = 0; t < latent; t++) v += z[t] * mix[t * k + c];
                x[r * k + c] = (float)(v * scale[c] / Math.Sqrt(latent));
            }
        }
        return x;
    }

    /// <summary>
    /// GPTQ as the paper states it, in double: explicit inverse of the dampened H, its upper Cholesky factor, then
    /// one input at a time with every later input updated at once (no lazy blocks); grids from the current weights at
    /// each group start, or from the original ones under act-order.
    /// </summary>
    private static double[] ReferenceGptq(float[] weight, int k, int n, float[] x, int rows, int group, bool actOrder)
    {
        var h = new double[k * k];
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < k; i++)
                for (int j = 0; j < k; j++) h[i * k + j] += (double)x[r * k + i] * x[r * k + j] / rows;
        double mean = Enumerable.Range(0, k).Average(i => h[i * k + i]);
        var order = actOrder ? Enumerable.Range(0, k).OrderByDescending(i => h[i * k + i]).ToArray() : Enumerable.Range(0, k).ToArray();
        var hp = new double[k * k];
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++) hp[a * k + b] = h[order[a] * k + order[b]] + (a == b ? 0.01 * mean : 0);
        var lower = ReferenceCholesky(Invert(hp, k), k); // U = Lᵀ
        var w = new double[k * n];
        for (int a = 0; a < k; a++)
            for (int j = 0; j < n; j++) w[a * n + j] = weight[order[a] * n + j];
        var result = new double[k * n];
        var options = new Int4QuantOptions { BlockSize = group };
        int groups = (k + group - 1) / group;
        var grids = new BlockGrid[groups];
        if (actOrder)
            for (int g = 0; g < groups; g++)
            {
                grids[g] = new BlockGrid(4, n, options);
                grids[g].Fit(weight, n, g * group, Math.Min(group, k - g * group));
            }
        var codes = new float[n];
        var dq = new float[n];
        for (int a = 0; a < k; a++)
        {
            int g = order[a] / group;
            if (!actOrder && a % group == 0)
            {
                grids[g] = new BlockGrid(4, n, options);
                grids[g].Fit(w.Select(v => (float)v).ToArray(), n, a, Math.Min(group, k - a));
            }
            var row = Enumerable.Range(0, n).Select(j => (float)w[a * n + j]).ToArray();
            grids[g].Round(row, codes, dq);
            double d = lower[a * k + a];
            for (int j = 0; j < n; j++)
            {
                result[order[a] * n + j] = dq[j];
                double e = (row[j] - dq[j]) / d;
                for (int b = a + 1; b < k; b++) w[b * n + j] -= lower[b * k + a] * e;
            }
        }
        return result;
    }

    private static double[] ReferenceCholesky(double[] a, int n)
    {
        var l = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
            {
                double s = a[i * n + j];
                for (int t = 0; t < j; t++) s -= l[i * n + t] * l[j * n + t];
                l[i * n + j] = i == j ? Math.Sqrt(s) : s / l[j * n + j];
            }
        return l;
    }

    private static double[] Invert(double[] a, int n)
    {
        var m = (double[])a.Clone();
        var inv = new double[n * n];
        for (int i = 0; i < n; i++) inv[i * n + i] = 1;
        for (int c = 0; c < n; c++)
        {
            int pivot = Enumerable.Range(c, n - c).MaxBy(r => Math.Abs(m[r * n + c]));
            for (int t = 0; t < n; t++)
            {
                (m[c * n + t], m[pivot * n + t]) = (m[pivot * n + t], m[c * n + t]);
                (inv[c * n + t], inv[pivot * n + t]) = (inv[pivot * n + t], inv[c * n + t]);
            }
            double p = m[c * n + c];
            for (int t = 0; t < n; t++) { m[c * n + t] /= p; inv[c * n + t] /= p; }
            for (int r = 0; r < n; r++)
            {
                if (r == c) continue;
                double f = m[r * n + c];
                for (int t = 0; t < n; t++) { m[r * n + t] -= f * m[c * n + t]; inv[r * n + t] -= f * inv[c * n + t]; }
            }
        }
        return inv;
    }

    private static float[] SpdMatrix(int n, int seed)
    {
        var x = CorrelatedRows(3 * n, n, seed);
        var a = new float[n * n];
        for (int r = 0; r < 3 * n; r++)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) a[i * n + j] += x[r * n + i] * x[r * n + j];
        for (int i = 0; i < n; i++) a[i * n + i] += 0.1f;
        return a;
    }


    private sealed class Close(double relative) : IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) <= relative * Math.Max(1, Math.Max(Math.Abs(a), Math.Abs(b)));

        public int GetHashCode(double value) => 0;
    }
}
