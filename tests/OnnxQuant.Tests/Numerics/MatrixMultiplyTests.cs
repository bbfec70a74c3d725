using OnnxQuant.Numerics;

namespace OnnxQuant.Tests.Numerics;

public class MatrixMultiplyTests
{
    // Sizes that hit every edge: rows not a multiple of the register tile, columns not a multiple of the panel,
    // K over one packed block, and strided views (a column slice of A, a sub-block of B).
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(7, 33, 5)]
    [InlineData(97, 300, 61)]
    [InlineData(130, 513, 290)]
    public void ProductMatchesDoublePrecisionReference(int m, int k, int n)
    {
        var rng = new Random(m * 1000 + k);
        var a = Random(rng, m * (k + 3));
        var b = Random(rng, (k + 2) * (n + 4));
        var av = new MatrixView(a, 2, m, k, k + 3);
        var bv = new MatrixView(b, (n + 4) + 1, k, n, n + 4);
        var c = MatrixMultiply.Multiply(av, bv);

        double worst = 0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0, mag = 0;
                for (int p = 0; p < k; p++)
                {
                    double t = (double)a[2 + i * (k + 3) + p] * b[(n + 4) + 1 + p * (n + 4) + j];
                    sum += t;
                    mag += Math.Abs(t);
                }
                worst = Math.Max(worst, Math.Abs(c[i * n + j] - sum) / (mag + 1e-30));
            }
        Assert.True(worst < 1e-5, $"relative error {worst}");
    }

    [Fact]
    public void StridedOutputLeavesOtherColumnsAlone()
    {
        var rng = new Random(3);
        var a = Random(rng, 20 * 40);
        var b = Random(rng, 40 * 50);
        var c = Enumerable.Repeat(7f, 20 * 60).ToArray();
        MatrixMultiply.Multiply(MatrixView.Of(a, 20, 40), MatrixView.Of(b, 40, 50), new MatrixView(c, 5, 20, 50, 60));
        for (int i = 0; i < 20; i++)
        {
            Assert.Equal(7f, c[i * 60 + 0]);
            Assert.Equal(7f, c[i * 60 + 4]);
            Assert.Equal(7f, c[i * 60 + 55]);
            Assert.NotEqual(7f, c[i * 60 + 5]);
        }
    }

    [Fact]
    public void MismatchedShapesAreRefused() =>
        Assert.Throws<ArgumentException>(() => MatrixMultiply.Multiply(MatrixView.Of(new float[6], 2, 3), MatrixView.Of(new float[8], 4, 2)));

    internal static float[] Random(Random rng, int count)
    {
        var v = new float[count];
        for (int i = 0; i < count; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
        return v;
    }
}
