using System.Numerics.Tensors;
using OnnxQuant.Numerics;

namespace OnnxQuant.Gptq;

/// <summary>Dense Cholesky factorisation and lower-triangular inversion on row-major float matrices (GPTQ's H).</summary>
public static class Cholesky
{
    /// <summary>
    /// Overwrites the symmetric positive definite <paramref name="a"/> ([n, n]) with its lower factor L (A = L Lᵀ; the
    /// strict upper part is zeroed). Column by column: every entry is a dot product of two contiguous row prefixes, and
    /// a column's rows are independent, so they run in parallel when the column is large. False when a pivot is not positive.
    /// </summary>
    public static bool TryFactorInPlace(float[] a, int n)
    {
        for (int j = 0; j < n; j++)
        {
            var rowJ = a.AsSpan(j * n, j);
            float pivot = a[j * n + j] - TensorPrimitives.Dot(rowJ, rowJ);
            if (!(pivot > 0f) || !float.IsFinite(pivot))
                return false;
            float diagonal = MathF.Sqrt(pivot);
            a[j * n + j] = diagonal;
            int column = j;
            ParallelWork.For(n - j - 1, (long)(n - j) * Math.Max(j, 1), t =>
            {
                int i = column + 1 + t;
                var rowI = a.AsSpan(i * n, column);
                a[i * n + column] = (a[i * n + column] - TensorPrimitives.Dot(rowI, a.AsSpan(column * n, column))) / diagonal;
            });
        }
        for (int i = 0; i < n; i++) a.AsSpan(i * n + i + 1, n - i - 1).Clear();
        return true;
    }

    /// <summary>
    /// The inverse X = L⁻¹ of a lower-triangular <paramref name="lower"/> ([n, n]), returned transposed (row j holds column
    /// j of X) so that forward substitution for a column reads and writes contiguous rows. Columns run in parallel.
    /// </summary>
    public static float[] InvertLowerTransposed(float[] lower, int n)
    {
        var xt = new float[(long)n * n];
        ParallelWork.For(n, (long)n * n, j =>
        {
            var column = xt.AsSpan(j * n, n);
            column[j] = 1f / lower[j * n + j];
            for (int i = j + 1; i < n; i++)
                column[i] = -TensorPrimitives.Dot(lower.AsSpan(i * n + j, i - j), column.Slice(j, i - j)) / lower[i * n + i];
        });
        return xt;
    }
}
