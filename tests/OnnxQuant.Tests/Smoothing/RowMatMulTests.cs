using OnnxQuant.Smoothing;

namespace OnnxQuant.Tests.Smoothing;

public class RowMatMulTests
{
    // Sizes that exercise full tiles, leftover rows and a leftover column strip.
    [Theory]
    [InlineData(1, 3, 5)]
    [InlineData(9, 37, 35)]
    [InlineData(64, 96, 160)]
    public void MatchesAPlainTripleLoop(int rows, int k, int n)
    {
        var random = new Random(rows * 1000 + k);
        var x = Enumerable.Range(0, rows * k).Select(_ => (float)random.NextDouble() * 2 - 1).ToArray();
        var w = Enumerable.Range(0, k * n).Select(_ => (float)random.NextDouble() * 2 - 1).ToArray();
        var y = RowMatMul.Multiply(x, rows, k, w, n);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < n; j++)
            {
                double expected = 0;
                for (int i = 0; i < k; i++) expected += (double)x[r * k + i] * w[i * n + j];
                Assert.True(Math.Abs(y[r * n + j] - expected) <= 1e-4 * (1 + Math.Abs(expected)), $"y[{r},{j}] = {y[r * n + j]}, expected {expected}");
            }
    }
}
