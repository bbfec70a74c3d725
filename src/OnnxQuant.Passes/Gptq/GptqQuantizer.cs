using System.Numerics.Tensors;
using OnnxQuant.Numerics;
using OnnxQuant.Quantization;

namespace OnnxQuant.Gptq;

/// <summary>
/// GPTQ rounding of a [K, N] MatMul weight (y = x W; GPTQ's "columns" are the K input features, i.e. our rows).
/// Input rows are rounded one at a time in the factor's order; each row's scaled error e = (w - q) / U[i, i] is
/// subtracted from every later row j as U[i, j] · e, which keeps the output error on the calibration rows small. Rows
/// are handled in lazy blocks: inside a block updates are immediate, the rows after it get one batched matrix product
/// per block. The result has RTN's layout (<see cref="QuantizedBlocks"/>, blocks along K), so packing is shared.
/// Deterministic: every parallel step writes disjoint rows in a fixed order.
/// </summary>
public static class GptqQuantizer
{
    /// <summary>Rows of the lazy update handled per matrix product (bounds the scratch to RowChunk x N floats).</summary>
    private const int RowChunk = 1024;

    /// <summary>
    /// Quantizes <paramref name="weight"/> ([K, N] row-major, not modified) at <paramref name="bits"/> with the grid of
    /// <paramref name="options"/>. <paramref name="factor"/> null: plain round-to-nearest at that width.
    /// </summary>
    public static QuantizedBlocks Quantize(ReadOnlySpan<float> weight, int k, int n, HessianFactor? factor, Int4QuantOptions options, int bits, int lazyBlock = 128)
    {
        if ((long)k * n != weight.Length)
            throw new ArgumentException($"a [{k}, {n}] weight needs {(long)k * n} values, got {weight.Length}");
        if (factor is not null && factor.K != k)
            throw new ArgumentException($"the factor is for {factor.K} inputs, the weight has K = {k}");
        int bs = options.BlockSize, kBlocks = (k + bs - 1) / bs;
        var order = factor?.Order;
        // The working copy, rows in rounding order.
        var w = new float[(long)k * n];
        for (int a = 0; a < k; a++) weight.Slice((order?[a] ?? a) * n, n).CopyTo(w.AsSpan(a * n, n));

        var codes = new byte[(long)n * kBlocks * bs];
        var scales = new float[(long)n * kBlocks];
        var zeros = new byte[(long)n * kBlocks];
        // Static groups under act-order: every group's grid is fitted on the original weights before any update.
        var grids = new BlockGrid?[kBlocks];
        if (order is not null)
            for (int g = 0; g < kBlocks; g++)
            {
                grids[g] = new BlockGrid(bits, n, options);
                grids[g]!.Fit(weight, n, g * bs, Math.Min(bs, k - g * bs));
                Record(grids[g]!, g, n, kBlocks, scales, zeros);
            }

        var rowCodes = new float[n];
        var dequantized = new float[n];
        int block = factor is null ? k : Math.Min(lazyBlock, k);
        var errors = new float[(long)block * n];
        for (int i1 = 0; i1 < k; i1 += block)
        {
            int count = Math.Min(block, k - i1);
            for (int i = 0; i < count; i++)
            {
                int a = i1 + i;
                int source = order?[a] ?? a;
                int g = source / bs;
                if (order is null && a % bs == 0)
                {
                    // The group's grid from its rows as updated so far (the lazy block and the group sizes are powers of
                    // two, so a group starts at a block start or lies inside one: its rows are up to date).
                    grids[g] = new BlockGrid(bits, n, options);
                    grids[g]!.Fit(w, n, a, Math.Min(bs, k - a));
                    Record(grids[g]!, g, n, kBlocks, scales, zeros);
                }
                var row = w.AsSpan(a * n, n);
                grids[g]!.Round(row, rowCodes, dequantized);
                var dst = codes.AsSpan();
                int within = source % bs;
                for (int col = 0; col < n; col++) dst[(col * kBlocks + g) * bs + within] = (byte)rowCodes[col];
                if (factor is null)
                    continue;
                var u = factor.Upper.AsSpan(a * k, k);
                var e = errors.AsSpan(i * n, n);
                TensorPrimitives.Subtract(row, dequantized, e);
                TensorPrimitives.Divide(e, u[a], e);
                // Immediate updates of the block's later rows.
                int rest = count - i - 1;
                var errorRow = errors;
                var upper = factor.Upper;
                int errorOffset = i * n;
                long uRow = (long)a * k;
                ParallelWork.For(rest, (long)rest * n, t =>
                {
                    int j = a + 1 + t;
                    TensorPrimitives.MultiplyAdd(errorRow.AsSpan(errorOffset, n), -upper[uRow + j], w.AsSpan(j * n, n), w.AsSpan(j * n, n));
                });
            }
            if (factor is not null)
                LazyUpdate(w, factor.Upper, k, n, i1, count, errors);
        }
        // The zero-padded tail of a short last block holds the zero point (the value 0), as RTN writes it.
        int tail = kBlocks * bs - k;
        if (tail > 0)
            for (int col = 0; col < n; col++)
            {
                int meta = col * kBlocks + kBlocks - 1;
                codes.AsSpan(meta * bs + bs - tail, tail).Fill(zeros[meta]);
            }
        return new QuantizedBlocks(k, n, options, codes, scales, zeros, bits);
    }

    private static void Record(BlockGrid grid, int g, int n, int kBlocks, float[] scales, byte[] zeros)
    {
        for (int col = 0; col < n; col++)
        {
            scales[col * kBlocks + g] = grid.Scale[col];
            zeros[col * kBlocks + g] = (byte)grid.Zero[col];
        }
    }

    /// <summary>W[j, :] -= Σ_i U[i1 + i, j] · E[i, :] for every row j after the block: one matrix product per row chunk.</summary>
    private static void LazyUpdate(float[] w, float[] upper, int k, int n, int i1, int count, float[] errors)
    {
        int start = i1 + count;
        if (start >= k)
            return;
        var errorView = MatrixView.Of(errors, count, n);
        int chunk = Math.Min(RowChunk, k - start);
        var coefficients = new float[(long)chunk * count];
        var product = new float[(long)chunk * n];
        for (int j0 = start; j0 < k; j0 += chunk)
        {
            int rows = Math.Min(chunk, k - j0);
            for (int t = 0; t < rows; t++)
                for (int i = 0; i < count; i++)
                    coefficients[t * count + i] = upper[(long)(i1 + i) * k + j0 + t];
            MatrixMultiply.Multiply(MatrixView.Of(coefficients, rows, count), errorView, MatrixView.Of(product, rows, n));
            TensorPrimitives.Subtract(w.AsSpan(j0 * n, rows * n), product.AsSpan(0, rows * n), w.AsSpan(j0 * n, rows * n));
        }
    }
}
