using System.Runtime.Intrinsics;

namespace OnnxQuant.Smoothing;

/// <summary>
/// <c>Y[R, N] = X[R, K] · W[K, N]</c> on row-major floats, for replaying recorded activation rows through a group's
/// weights. A 4-row x 16-column tile of Y stays in registers over the whole K loop (fused multiply-adds on 256-bit
/// vectors); a 16-column strip of W stays in cache while every row block passes; strips run in parallel.
/// </summary>
public static class RowMatMul
{
    private const int RowTile = 4, ColumnTile = 16;

    public static float[] Multiply(ReadOnlySpan<float> x, int rows, int k, ReadOnlySpan<float> w, int n)
    {
        if (x.Length != (long)rows * k || w.Length != (long)k * n)
            throw new ArgumentException($"matmul: X has {x.Length} values for [{rows}, {k}], W has {w.Length} for [{k}, {n}]");
        var y = new float[(long)rows * n];
        var xs = x.ToArray();
        var ws = w.ToArray();
        int strips = (n + ColumnTile - 1) / ColumnTile;
        if ((long)rows * k * n < 1 << 18)
            for (int s = 0; s < strips; s++) Strip(xs, ws, y, rows, k, n, s * ColumnTile);
        else
            Parallel.For(0, strips, s => Strip(xs, ws, y, rows, k, n, s * ColumnTile));
        return y;
    }

    private static unsafe void Strip(float[] x, float[] w, float[] y, int rows, int k, int n, int j)
    {
        fixed (float* px = x, pw = w, py = y)
        {
            bool full = j + ColumnTile <= n && Vector256.IsHardwareAccelerated;
            int r = 0;
            if (full)
                for (; r + RowTile <= rows; r += RowTile)
                    Tile(px + (long)r * k, k, pw + j, n, py + (long)r * n + j);
            for (; r < rows; r++)
                Scalar(px + (long)r * k, k, pw, n, py + (long)r * n, j, Math.Min(n, j + ColumnTile));
        }
    }

    private static unsafe void Tile(float* x, int k, float* w, int n, float* y)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default, c30 = default, c31 = default;
        float* x0 = x, x1 = x + k, x2 = x + 2 * k, x3 = x + 3 * k;
        for (int i = 0; i < k; i++, w += n)
        {
            var w0 = Vector256.Load(w);
            var w1 = Vector256.Load(w + 8);
            var a = Vector256.Create(x0[i]);
            c00 = Vector256.FusedMultiplyAdd(w0, a, c00);
            c01 = Vector256.FusedMultiplyAdd(w1, a, c01);
            a = Vector256.Create(x1[i]);
            c10 = Vector256.FusedMultiplyAdd(w0, a, c10);
            c11 = Vector256.FusedMultiplyAdd(w1, a, c11);
            a = Vector256.Create(x2[i]);
            c20 = Vector256.FusedMultiplyAdd(w0, a, c20);
            c21 = Vector256.FusedMultiplyAdd(w1, a, c21);
            a = Vector256.Create(x3[i]);
            c30 = Vector256.FusedMultiplyAdd(w0, a, c30);
            c31 = Vector256.FusedMultiplyAdd(w1, a, c31);
        }
        c00.Store(y); c01.Store(y + 8);
        c10.Store(y + n); c11.Store(y + n + 8);
        c20.Store(y + 2 * n); c21.Store(y + 2 * n + 8);
        c30.Store(y + 3 * n); c31.Store(y + 3 * n + 8);
    }

    private static unsafe void Scalar(float* xRow, int k, float* w, int n, float* yRow, int j0, int j1)
    {
        for (int j = j0; j < j1; j++)
        {
            float sum = 0;
            for (int i = 0; i < k; i++)
                sum += xRow[i] * w[(long)i * n + j];
            yRow[j] = sum;
        }
    }
}
