using System.Buffers;
using System.Numerics.Tensors;
using OnnxQuant.Numerics;
using OnnxQuant.Quantization;

namespace OnnxQuant.Awq;

/// <summary>
/// The output error the 4-bit weight quantization causes on recorded activation rows X [R, K]:
/// <c>E = X · (W - diag(1/s) · Q(diag(s) · W))</c>, i.e. the error of <c>(X / s) · Q(s W)</c> against <c>X · W</c>.
/// Works through the weight in column chunks (4-bit blocks run along K, so columns are independent), which bounds the
/// scratch memory to a few [K, chunk] buffers whatever N is; the matrix work is <see cref="MatrixMultiply"/>.
/// </summary>
public static class QuantizationError
{
    /// <summary>Scratch per chunk is about this many floats ([K, chunk] for the weight, [R, chunk] for the error).</summary>
    private const int ChunkFloats = 1 << 22;

    /// <summary>
    /// Sum of squared output errors over all rows and columns. <paramref name="scales"/> is the per-input-channel AWQ
    /// scale s [K], or empty for plain round-to-nearest. <paramref name="clipRatios"/> as in <see cref="Int4BlockQuantizer"/>.
    /// </summary>
    public static double SquaredError(MatrixView x, float[] weight, int n, ReadOnlySpan<float> scales, Int4QuantOptions options, ReadOnlySpan<float> clipRatios = default)
    {
        int k = x.Cols;
        CheckShapes(x, weight, n, scales);
        int chunk = ChunkColumns(k, x.Rows, n);
        var delta = ArrayPool<float>.Shared.Rent(k * chunk);
        var error = ArrayPool<float>.Shared.Rent(x.Rows * chunk);
        try
        {
            double total = 0;
            for (int c0 = 0; c0 < n; c0 += chunk)
            {
                int width = Math.Min(chunk, n - c0);
                WeightDelta(weight, n, c0, width, scales, options, SliceClip(clipRatios, n, k, options.BlockSize, c0, width), delta);
                var e = MatrixView.Of(error, x.Rows, width);
                MatrixMultiply.Multiply(x, MatrixView.Of(delta, k, width), e);
                for (int r = 0; r < x.Rows; r++)
                    total += TensorPrimitives.SumOfSquares(error.AsSpan(r * width, width));
            }
            return total;
        }
        finally
        {
            ArrayPool<float>.Shared.Return(delta);
            ArrayPool<float>.Shared.Return(error);
        }
    }

    /// <summary>
    /// The squared output error of each 4-bit block on its own: <c>errors[n * kBlocks + g] = Σ_r (X[r, g] · Δ[g, n])²</c>,
    /// where g is block g's slice of K. The clip search picks a ratio per block from these (the blocks' errors are treated
    /// as independent, as the reference AWQ does). Computed as <c>Δ_gᵀ G_g Δ_g</c> with the block Gram matrices
    /// <paramref name="grams"/> (<c>X_gᵀ X_g</c>): block² instead of rows x block multiply-adds per weight.
    /// </summary>
    public static void BlockSquaredErrors(BlockGrams grams, float[] weight, int n, Int4QuantOptions options, ReadOnlySpan<float> clipRatios, Span<float> errors)
    {
        int k = grams.K, bs = options.BlockSize, kBlocks = (k + bs - 1) / bs;
        if (grams.BlockSize != bs)
            throw new ArgumentException($"Gram matrices of blocks of {grams.BlockSize} for a quantization block of {bs}");
        if (n <= 0 || weight.Length != (long)k * n)
            throw new ArgumentException($"weight holds {weight.Length} values; [K={k}, N={n}] needs {(long)k * n}");
        if (errors.Length != n * kBlocks)
            throw new ArgumentException($"block errors need N * k_blocks = {n * kBlocks} values, got {errors.Length}");
        int chunk = ChunkColumns(k, bs, n);
        var delta = ArrayPool<float>.Shared.Rent(k * chunk);
        var product = ArrayPool<float>.Shared.Rent(bs * chunk);
        var columnSums = new float[chunk];
        try
        {
            for (int c0 = 0; c0 < n; c0 += chunk)
            {
                int width = Math.Min(chunk, n - c0);
                WeightDelta(weight, n, c0, width, default, options, SliceClip(clipRatios, n, k, bs, c0, width), delta);
                var deltaView = MatrixView.Of(delta, k, width);
                for (int g = 0; g < kBlocks; g++)
                {
                    int rows = Math.Min(bs, k - g * bs);
                    // T = G_g · Δ_g, then error[n] = Σ_i Δ_g[i, n] T[i, n].
                    MatrixMultiply.Multiply(MatrixView.Of(grams.Block(g), rows, rows), deltaView.RowRange(g * bs, rows), MatrixView.Of(product, rows, width));
                    var sums = columnSums.AsSpan(0, width);
                    sums.Clear();
                    for (int i = 0; i < rows; i++)
                        TensorPrimitives.MultiplyAdd(delta.AsSpan((g * bs + i) * width, width), product.AsSpan(i * width, width), sums, sums);
                    for (int j = 0; j < width; j++)
                        errors[(c0 + j) * kBlocks + g] = MathF.Max(sums[j], 0f);
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(delta);
            ArrayPool<float>.Shared.Return(product);
        }
    }

    /// <summary>
    /// Columns [c0, c0 + width) of <c>W - diag(1/s) · Q(diag(s) · W)</c> into <paramref name="delta"/> as [K, width].
    /// </summary>
    private static void WeightDelta(float[] weight, int n, int c0, int width, ReadOnlySpan<float> scales, Int4QuantOptions options,
        ReadOnlySpan<float> clipRatios, float[] delta)
    {
        int k = weight.Length / n;
        var d = delta.AsSpan(0, k * width);
        for (int r = 0; r < k; r++)
        {
            var src = weight.AsSpan(r * n + c0, width);
            var dst = d.Slice(r * width, width);
            if (scales.IsEmpty) src.CopyTo(dst);
            else TensorPrimitives.Multiply(src, scales[r], dst);
        }
        Int4BlockQuantizer.FakeQuantizeInPlace(d, k, width, options, clipRatios);
        for (int r = 0; r < k; r++)
        {
            var src = weight.AsSpan(r * n + c0, width);
            var dst = d.Slice(r * width, width);
            // Δ = W - Q / s, written as W + Q * (-1/s) so the row is one fused pass.
            if (scales.IsEmpty) TensorPrimitives.Subtract(src, dst, dst);
            else TensorPrimitives.MultiplyAdd(dst, -1f / scales[r], src, dst);
        }
    }

    // Clip ratios laid out [N, k_blocks] (or [N]) restricted to columns [c0, c0 + width); contiguous in both layouts.
    private static ReadOnlySpan<float> SliceClip(ReadOnlySpan<float> clipRatios, int n, int k, int blockSize, int c0, int width)
    {
        if (clipRatios.IsEmpty)
            return default;
        int kBlocks = (k + blockSize - 1) / blockSize;
        if (clipRatios.Length == n)
            return clipRatios.Slice(c0, width);
        if (clipRatios.Length == n * kBlocks)
            return clipRatios.Slice(c0 * kBlocks, width * kBlocks);
        throw new ArgumentException($"clip ratios: {clipRatios.Length} values; expected N = {n} or N * k_blocks = {n * kBlocks}");
    }

    private static int ChunkColumns(int k, int rows, int n)
    {
        int chunk = ChunkFloats / Math.Max(k, rows);
        chunk = Math.Max(256, chunk / 256 * 256);
        return Math.Min(chunk, n);
    }

    private static void CheckShapes(MatrixView x, float[] weight, int n, ReadOnlySpan<float> scales)
    {
        if (n <= 0 || weight.Length != (long)x.Cols * n)
            throw new ArgumentException($"weight holds {weight.Length} values; [K={x.Cols}, N={n}] needs {(long)x.Cols * n}");
        if (!scales.IsEmpty && scales.Length != x.Cols)
            throw new ArgumentException($"{scales.Length} scales for K = {x.Cols} input channels");
    }
}
