namespace OnnxQuant.Numerics;

/// <summary>
/// The output columns a search measures its loss on. SmoothQuant's alpha search and AWQ's scale search compare
/// candidates by the output error of a group's consumers; both quantizations act column by column (activations per
/// tensor or per token, weights per output channel or per block of one column), so a column's error does not depend on
/// the other columns, and the loss on every m-th column is the group's loss restricted to those columns: the same
/// columns for every candidate, at 1/m of the cost. Groups up to <see cref="MaxColumns"/> wide are measured whole —
/// every model bench/results.md measures accuracy on — and wider ones (a 7B's fused q/k/v, 12288 columns; gate + up,
/// 22016) on about that many (docs/architecture.md, "Search cost").
/// </summary>
public static class ColumnSample
{
    public const int MaxColumns = 2048;

    /// <summary>Every how many columns a group of <paramref name="totalColumns"/> is measured on (1: all).</summary>
    public static int Stride(long totalColumns, int maxColumns = MaxColumns) => (int)Math.Max(1, (totalColumns + maxColumns - 1) / maxColumns);

    /// <summary>Columns 0, stride, 2·stride, ... of a [K, N] row-major matrix; the matrix itself when stride is 1.</summary>
    public static float[] Take(float[] kn, int k, int n, int stride, out int columns)
    {
        columns = Columns(n, stride);
        if (stride <= 1)
            return kn;
        int width = columns;
        var result = new float[(long)k * width];
        Parallel.For(0, k, r => TakeRow(kn.AsSpan(r * n, n), result.AsSpan(r * width, width), stride));
        return result;
    }

    /// <summary>How many of <paramref name="n"/> columns a sample with <paramref name="stride"/> keeps.</summary>
    public static int Columns(int n, int stride) => (n + stride - 1) / stride;

    /// <summary>Elements 0, stride, 2·stride, ... of one row into <paramref name="target"/> (<see cref="Columns"/> long).</summary>
    public static void TakeRow(ReadOnlySpan<float> row, Span<float> target, int stride)
    {
        for (int c = 0; c < target.Length; c++)
            target[c] = row[c * stride];
    }
}
