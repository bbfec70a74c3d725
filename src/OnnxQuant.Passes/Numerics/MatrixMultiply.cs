using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace OnnxQuant.Numerics;

/// <summary>
/// A row-major float matrix inside an array: <see cref="Rows"/> x <see cref="Cols"/> values starting at <see cref="Offset"/>,
/// rows <see cref="Stride"/> floats apart. Lets the search multiply column slices (one quantization block of K) without copies.
/// </summary>
public readonly record struct MatrixView(float[] Data, int Offset, int Rows, int Cols, int Stride)
{
    public static MatrixView Of(float[] data, int rows, int cols) => new(data, 0, rows, cols, cols);

    /// <summary>Columns [col, col + count) of this view.</summary>
    public MatrixView Columns(int col, int count) => this with { Offset = Offset + col, Cols = count };

    /// <summary>Rows [row, row + count) of this view.</summary>
    public MatrixView RowRange(int row, int count) => this with { Offset = Offset + row * Stride, Rows = count };
}

/// <summary>
/// Single-precision <c>C = A · B</c>, the cost centre of the AWQ and SmoothQuant alpha searches ([sampled rows, K] x
/// [K, N] per grid point) and the one matrix product of the passes.
/// Blocked the usual way: B is packed into K-slices of NR-wide column panels that stay in cache, a register tile of
/// MR rows x NR columns is accumulated with fused multiply-adds (AVX-512 or AVX2 when present), and independent
/// (row chunk, column chunk) pieces of C run in parallel.
/// </summary>
public static class MatrixMultiply
{
    private const int KBlock = 256;     // packed B slice: KBlock x NR floats per panel, a few panels per L2
    private const int ColumnChunk = 256; // columns of C one task owns
    private const int MinRowChunk = 48;  // fewer rows than this per task repack B too often

    private static readonly bool Use512 = Vector512.IsHardwareAccelerated;
    private static readonly bool Use256 = !Use512 && Vector256.IsHardwareAccelerated;
    private static readonly int MR = Use512 ? 8 : 6;
    private static readonly int NR = Use512 ? 32 : 16;

    /// <summary>C = A · B. A is [M, K], B is [K, N], C is [M, N]; C may not overlap A or B.</summary>
    public static void Multiply(MatrixView a, MatrixView b, MatrixView c)
    {
        if (a.Cols != b.Rows || c.Rows != a.Rows || c.Cols != b.Cols)
            throw new ArgumentException($"cannot multiply [{a.Rows}x{a.Cols}] by [{b.Rows}x{b.Cols}] into [{c.Rows}x{c.Cols}]");
        int m = a.Rows, n = b.Cols, k = a.Cols;
        if (m == 0 || n == 0)
            return;
        if (k == 0)
        {
            for (int i = 0; i < m; i++) c.Data.AsSpan(c.Offset + i * c.Stride, n).Clear();
            return;
        }
        if (!Use512 && !Use256)
        {
            MultiplyRowwise(a, b, c);
            return;
        }
        // Every row chunk repacks B, so rows are split only as far as the cores need work (2 pieces per core).
        int colChunks = (n + ColumnChunk - 1) / ColumnChunk;
        int rowChunks = Math.Clamp((2 * Environment.ProcessorCount + colChunks - 1) / colChunks, 1, Math.Max(1, m / MinRowChunk));
        int rowChunk = ((m + rowChunks - 1) / rowChunks + 23) / 24 * 24;   // a multiple of both register tiles' rows
        rowChunks = (m + rowChunk - 1) / rowChunk;
        int pieces = rowChunks * colChunks;
        // Small products are not worth a thread hop.
        if (pieces == 1 || (long)m * n * k < 1 << 18)
        {
            for (int p = 0; p < pieces; p++) MultiplyPiece(a, b, c, p / colChunks * rowChunk, rowChunk, p % colChunks);
            return;
        }
        Parallel.For(0, pieces, p => MultiplyPiece(a, b, c, p / colChunks * rowChunk, rowChunk, p % colChunks));
    }

    /// <summary>A freshly allocated [A.Rows, B.Cols] product.</summary>
    public static float[] Multiply(MatrixView a, MatrixView b)
    {
        var result = new float[(long)a.Rows * b.Cols];
        Multiply(a, b, MatrixView.Of(result, a.Rows, b.Cols));
        return result;
    }

    private static unsafe void MultiplyPiece(MatrixView a, MatrixView b, MatrixView c, int r0, int rowCount, int colChunk)
    {
        int r1 = Math.Min(a.Rows, r0 + rowCount);
        int c0 = colChunk * ColumnChunk, c1 = Math.Min(b.Cols, c0 + ColumnChunk);
        int k = a.Cols, width = c1 - c0, panels = (width + NR - 1) / NR;
        int kb = Math.Min(KBlock, k);
        float[] packed = ArrayPool<float>.Shared.Rent(panels * kb * NR);
        float[] tile = ArrayPool<float>.Shared.Rent(MR * NR);
        try
        {
            fixed (float* pa = a.Data, pPacked = packed, pTile = tile)
            {
                for (int k0 = 0; k0 < k; k0 += KBlock)
                {
                    int kc = Math.Min(KBlock, k - k0);
                    PackB(b, k0, kc, c0, width, packed);
                    for (int i = r0; i < r1; i += MR)
                    {
                        int rows = Math.Min(MR, r1 - i);
                        float* aBlock = pa + a.Offset + (long)i * a.Stride + k0;
                        for (int p = 0; p < panels; p++)
                        {
                            float* panel = pPacked + (long)p * kc * NR;
                            if (Use512) Kernel512(aBlock, a.Stride, rows, panel, kc, pTile);
                            else Kernel256(aBlock, a.Stride, rows, panel, kc, pTile);
                            int cols = Math.Min(NR, width - p * NR);
                            StoreTile(tile, c, i, rows, c0 + p * NR, cols, accumulate: k0 > 0);
                        }
                    }
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(packed);
            ArrayPool<float>.Shared.Return(tile);
        }
    }

    // B[k0..k0+kc, c0..c0+width] as panels of NR columns, each panel kc rows of NR contiguous floats, zero-padded on the right.
    private static void PackB(MatrixView b, int k0, int kc, int c0, int width, float[] packed)
    {
        int panels = (width + NR - 1) / NR;
        for (int p = 0; p < panels; p++)
        {
            int cols = Math.Min(NR, width - p * NR);
            var dst = packed.AsSpan(p * kc * NR, kc * NR);
            for (int kk = 0; kk < kc; kk++)
            {
                var src = b.Data.AsSpan(b.Offset + (k0 + kk) * b.Stride + c0 + p * NR, cols);
                src.CopyTo(dst.Slice(kk * NR, cols));
                if (cols < NR) dst.Slice(kk * NR + cols, NR - cols).Clear();
            }
        }
    }

    private static void StoreTile(float[] tile, MatrixView c, int row, int rows, int col, int cols, bool accumulate)
    {
        for (int r = 0; r < rows; r++)
        {
            var src = tile.AsSpan(r * NR, cols);
            var dst = c.Data.AsSpan(c.Offset + (row + r) * c.Stride + col, cols);
            if (accumulate) TensorPrimitives.Add(dst, src, dst);
            else src.CopyTo(dst);
        }
    }

    // 8 rows x 32 columns: 16 zmm accumulators. Rows past `rows` re-read the last valid row; their results are discarded.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Kernel512(float* a, int lda, int rows, float* panel, int kc, float* tile)
    {
        float* a0 = a, a1 = a + lda * Math.Min(1, rows - 1), a2 = a + lda * Math.Min(2, rows - 1), a3 = a + lda * Math.Min(3, rows - 1);
        float* a4 = a + lda * Math.Min(4, rows - 1), a5 = a + lda * Math.Min(5, rows - 1), a6 = a + lda * Math.Min(6, rows - 1), a7 = a + lda * Math.Min(7, rows - 1);
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        float* bp = panel;
        for (int p = 0; p < kc; p++, bp += 32)
        {
            var b0 = Vector512.Load(bp);
            var b1 = Vector512.Load(bp + 16);
            var x = Vector512.Create(a0[p]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a1[p]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a2[p]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a3[p]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a4[p]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a5[p]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a6[p]); c60 = Vector512.FusedMultiplyAdd(x, b0, c60); c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a7[p]); c70 = Vector512.FusedMultiplyAdd(x, b0, c70); c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
        }
        c00.Store(tile); c01.Store(tile + 16); c10.Store(tile + 32); c11.Store(tile + 48);
        c20.Store(tile + 64); c21.Store(tile + 80); c30.Store(tile + 96); c31.Store(tile + 112);
        c40.Store(tile + 128); c41.Store(tile + 144); c50.Store(tile + 160); c51.Store(tile + 176);
        c60.Store(tile + 192); c61.Store(tile + 208); c70.Store(tile + 224); c71.Store(tile + 240);
    }

    // 6 rows x 16 columns: 12 ymm accumulators, 2 for B, 1 broadcast.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Kernel256(float* a, int lda, int rows, float* panel, int kc, float* tile)
    {
        float* a0 = a, a1 = a + lda * Math.Min(1, rows - 1), a2 = a + lda * Math.Min(2, rows - 1);
        float* a3 = a + lda * Math.Min(3, rows - 1), a4 = a + lda * Math.Min(4, rows - 1), a5 = a + lda * Math.Min(5, rows - 1);
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        float* bp = panel;
        for (int p = 0; p < kc; p++, bp += 16)
        {
            var b0 = Vector256.Load(bp);
            var b1 = Vector256.Load(bp + 8);
            var x = Vector256.Create(a0[p]); c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(a1[p]); c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(a2[p]); c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(a3[p]); c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            x = Vector256.Create(a4[p]); c40 = Vector256.FusedMultiplyAdd(x, b0, c40); c41 = Vector256.FusedMultiplyAdd(x, b1, c41);
            x = Vector256.Create(a5[p]); c50 = Vector256.FusedMultiplyAdd(x, b0, c50); c51 = Vector256.FusedMultiplyAdd(x, b1, c51);
        }
        c00.Store(tile); c01.Store(tile + 8); c10.Store(tile + 16); c11.Store(tile + 24);
        c20.Store(tile + 32); c21.Store(tile + 40); c30.Store(tile + 48); c31.Store(tile + 56);
        c40.Store(tile + 64); c41.Store(tile + 72); c50.Store(tile + 80); c51.Store(tile + 88);
    }

    // Without wide SIMD: each row of C as a sum of B's rows weighted by A's row (vectorised by TensorPrimitives).
    private static void MultiplyRowwise(MatrixView a, MatrixView b, MatrixView c)
    {
        Parallel.For(0, a.Rows, i =>
        {
            var dst = c.Data.AsSpan(c.Offset + i * c.Stride, c.Cols);
            dst.Clear();
            for (int kk = 0; kk < a.Cols; kk++)
            {
                float x = a.Data[a.Offset + i * a.Stride + kk];
                if (x != 0f)
                    TensorPrimitives.MultiplyAdd(b.Data.AsSpan(b.Offset + kk * b.Stride, b.Cols), x, dst, dst);
            }
        });
    }
}
