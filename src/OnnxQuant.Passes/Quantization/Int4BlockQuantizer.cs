using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using Onnx;
using OnnxQuant.Numerics;

namespace OnnxQuant.Quantization;

/// <summary>
/// Round-to-nearest 4-bit block quantization of a [K, N] row-major weight, blocks of <see cref="Int4QuantOptions.BlockSize"/>
/// along K for each column (MatMulNBits' grouping). Deterministic: the result does not depend on threading.
/// <para>
/// Error bound (tested): with <c>s</c> the stored scale, every element within the block's (clipped) range satisfies
/// <c>|w - dequant(w)| &lt;= |s| / 2</c> (plus float rounding of <c>w / s</c>, ~1e-6 relative). Asymmetric: the range is
/// [min(min, 0), max(max, 0)] times the clip ratio, and because <c>zp</c> is rounded, the ends of the range are at most
/// half a step outside the codes, so the bound holds up to the ends. Symmetric (ORT's convention, see
/// <see cref="Int4Scheme.Symmetric"/>): values of the opposite sign to the extreme beyond 7.5 |s| clip to code 15 and
/// have an error up to |s|. Values a clip ratio below 1 cuts off are clamped to the nearest end code.
/// </para>
/// <para>
/// Rounding is to nearest, ties to even, of <c>w * (1 / s)</c>; codes are <c>clamp(round(w / s) + zp, 0, 15)</c>.
/// Work is done in tiles of one block row by up to <see cref="TileColumns"/> columns, so every inner loop reads
/// contiguous rows and vectorises; tiles run in parallel when the weight is large.
/// </para>
/// </summary>
public static partial class Int4BlockQuantizer
{
    private const int TileColumns = 256;
    private const float MaxCode = 15f;
    private const float SymmetricZeroPoint = 8f;

    /// <summary>
    /// Quantizes <paramref name="weight"/> ([K, N] row-major). <paramref name="clipRatios"/> (optional, each in (0, 1])
    /// shrinks each block's range before the scale is chosen (AWQ's clip search): empty for none, N values for one
    /// ratio per column, or N * k_blocks values laid out [N, k_blocks] for one per block.
    /// </summary>
    public static QuantizedBlocks Quantize(ReadOnlySpan<float> weight, int k, int n, Int4QuantOptions? options = null, ReadOnlySpan<float> clipRatios = default)
    {
        options ??= new Int4QuantOptions();
        var plan = Plan.Create(weight.Length, k, n, options, clipRatios);
        long blocks = (long)n * plan.KBlocks;
        var codes = new byte[blocks * options.BlockSize];
        var scales = new float[blocks];
        var zeroPoints = new byte[blocks];
        unsafe
        {
            fixed (float* src = weight)
            {
                nint srcAddress = (nint)src;
                ParallelWork.For(plan.TileCount, weight.Length, tile => plan.RunTile(tile, srcAddress, 0, new CodeSink(codes, scales, zeroPoints)));
            }
        }
        return new QuantizedBlocks(k, n, options, codes, scales, zeroPoints);
    }

    /// <summary>
    /// Writes <c>dequant(quant(weight))</c> into <paramref name="result"/> (both [K, N]; they may be the same span).
    /// Equal, value for value, to <c>Quantize(...).Dequantize()</c>, without allocating the codes: the hot path of AWQ's searches.
    /// </summary>
    public static void FakeQuantize(ReadOnlySpan<float> weight, Span<float> result, int k, int n, Int4QuantOptions? options = null, ReadOnlySpan<float> clipRatios = default)
    {
        options ??= new Int4QuantOptions();
        if (result.Length != weight.Length)
            throw new ArgumentException($"result holds {result.Length} values, the weight {weight.Length}");
        var plan = Plan.Create(weight.Length, k, n, options, clipRatios);
        unsafe
        {
            fixed (float* src = weight)
            fixed (float* dst = result)
            {
                nint srcAddress = (nint)src, dstAddress = (nint)dst;
                ParallelWork.For(plan.TileCount, weight.Length, tile => plan.RunTile(tile, srcAddress, dstAddress, default));
            }
        }
    }

    /// <summary>In-place <see cref="FakeQuantize(ReadOnlySpan{float}, Span{float}, int, int, Int4QuantOptions?, ReadOnlySpan{float})"/>.</summary>
    public static void FakeQuantizeInPlace(Span<float> weight, int k, int n, Int4QuantOptions? options = null, ReadOnlySpan<float> clipRatios = default) =>
        FakeQuantize(weight, weight, k, n, options, clipRatios);

    /// <summary>
    /// Where a tile's codes, scales and zero points go when quantizing (all null when fake-quantizing): one code per byte
    /// in <see cref="Codes"/>, or two per byte in MatMulNBits' layout in <see cref="Packed"/>; with the packed codes, each
    /// tile's squared error and squared norm in <see cref="Errors"/> and <see cref="Norms"/> (indexed by tile, so sums are deterministic).
    /// </summary>
    internal readonly record struct CodeSink(byte[]? Codes, float[]? Scales, byte[]? ZeroPoints, byte[]? Packed = null, double[]? Errors = null, double[]? Norms = null);

    /// <summary>Shapes, options and clip ratios of one call, checked once; <see cref="RunTile"/> does the work.</summary>
    /// <summary>zp = clamp(round(-lo / scale), 0, maxCode): one definition, so GPTQ's grid (BlockGrid) is RTN's bit for bit.</summary>
    internal static void AsymmetricZeroPoints(ReadOnlySpan<float> lo, ReadOnlySpan<float> scale, Span<float> zero, float maxCode)
    {
        TensorPrimitives.Divide(lo, scale, zero);
        TensorPrimitives.Negate(zero, zero);
        TensorPrimitives.Round(zero, zero);
        TensorPrimitives.Max(zero, 0f, zero);
        TensorPrimitives.Min(zero, maxCode, zero);
    }

    internal sealed partial class Plan
    {
        private readonly int _k, _n, _blockSize, _columnTiles;
        private readonly Int4Scheme _scheme;
        private readonly TensorProto.Types.DataType _scaleType;
        private readonly float[] _clip;

        private Plan(int k, int n, Int4QuantOptions options, float[] clip)
        {
            _k = k;
            _n = n;
            _blockSize = options.BlockSize;
            _scheme = options.Scheme;
            _scaleType = options.ScaleType;
            _clip = clip;
            KBlocks = (k + _blockSize - 1) / _blockSize;
            _columnTiles = (n + TileColumns - 1) / TileColumns;
        }

        public int KBlocks { get; }

        public int TileCount => KBlocks * _columnTiles;

        public int ColumnTiles => _columnTiles;

        public static Plan Create(int length, int k, int n, Int4QuantOptions options, ReadOnlySpan<float> clipRatios)
        {
            options.Validate();
            if (k <= 0 || n <= 0 || (long)k * n != length)
                throw new ArgumentException($"a [{k}, {n}] weight needs {(long)k * n} values, got {length}");
            int kBlocks = (k + options.BlockSize - 1) / options.BlockSize;
            if ((long)n * kBlocks * options.BlockSize > Array.MaxLength)
                throw new OnnxQuantException(null, $"a [{k}, {n}] weight is too large for one 4-bit tensor", ExitCode.Unsupported);
            if (clipRatios.Length != 0 && clipRatios.Length != n && clipRatios.Length != (long)n * kBlocks)
                throw new ArgumentException($"clip ratios: {clipRatios.Length} values; expected none, N = {n} or N * k_blocks = {(long)n * kBlocks}");
            foreach (var r in clipRatios)
                if (!(r > 0f && r <= 1f))
                    throw new ArgumentOutOfRangeException(nameof(clipRatios), r, "a clip ratio must be in (0, 1]");
            return new Plan(k, n, options, clipRatios.ToArray());
        }

        private float ClipRatio(int column, int block) =>
            _clip.Length == 0 ? 1f : _clip.Length == _n ? _clip[column] : _clip[column * KBlocks + block];

        /// <summary>The tile's first row and column and its size (rows x columns).</summary>
        public (int Row, int Column, int Rows, int Columns) TileBounds(int tile)
        {
            int r0 = tile / _columnTiles * _blockSize, c0 = tile % _columnTiles * TileColumns;
            return (r0, c0, Math.Min(_blockSize, _k - r0), Math.Min(TileColumns, _n - c0));
        }

        /// <summary>The most floats a tile holds (its buffer for <see cref="RunBufferedTile"/>).</summary>
        public int TileFloats => _blockSize * TileColumns;

        /// <summary>Quantizes one tile of the whole [K, N] weight at <paramref name="srcAddress"/> (the fake-quant destination has its layout).</summary>
        public unsafe void RunTile(int tile, nint srcAddress, nint dstAddress, CodeSink sink)
        {
            var (r0, c0, _, _) = TileBounds(tile);
            long origin = (long)r0 * _n + c0;
            RunTile(tile, (float*)srcAddress + origin, _n, dstAddress == 0 ? null : (float*)dstAddress + origin, sink);
        }

        /// <summary>Quantizes one tile held alone, row-major [rows, columns] at <paramref name="tileAddress"/> (the streamed rewrite's cache-sized buffer).</summary>
        public unsafe void RunBufferedTile(int tile, nint tileAddress, int stride, CodeSink sink) =>
            RunTile(tile, (float*)tileAddress, stride, null, sink);

        // The tile's element (r0 + r, c0 + j) is at origin[r * stride + j]; the fake-quant destination has the same layout.
        private unsafe void RunTile(int tile, float* origin, int stride, float* dstOrigin, CodeSink sink)
        {
            int block = tile / _columnTiles;
            var (r0, c0, rows, width) = TileBounds(tile);

            Span<float> lo = stackalloc float[TileColumns];
            Span<float> hi = stackalloc float[TileColumns];
            Span<float> scale = stackalloc float[TileColumns];
            Span<float> inverse = stackalloc float[TileColumns];
            Span<float> zero = stackalloc float[TileColumns];
            lo = lo[..width];
            hi = hi[..width];
            scale = scale[..width];
            inverse = inverse[..width];
            zero = zero[..width];

            // Range of each column over the block's rows, reading whole row slices.
            var first = new ReadOnlySpan<float>(origin, width);
            first.CopyTo(lo);
            first.CopyTo(hi);
            for (int r = 1; r < rows; r++)
            {
                var row = new ReadOnlySpan<float>(origin + (long)r * stride, width);
                TensorPrimitives.Min(lo, row, lo);
                TensorPrimitives.Max(hi, row, hi);
            }
            TileParameters(lo, hi, block, c0, r0, rows, scale, inverse, zero);

            if (sink.Codes is null && sink.Packed is null)
            {
                for (int r = 0; r < rows; r++)
                {
                    long offset = (long)r * stride;
                    QuantizeRow(new ReadOnlySpan<float>(origin + offset, width), new Span<float>(dstOrigin + offset, width), inverse, zero, scale, dequantize: true);
                }
                return;
            }
            if (sink.Packed is not null)
                WritePacked(sink, tile, block, c0, width, rows, origin, stride, scale, inverse, zero);
            else
                WriteCodes(sink, block, c0, width, rows, origin, stride, scale, inverse, zero);
        }

        private unsafe void WriteCodes(CodeSink sink, int block, int c0, int width, int rows, float* origin, int stride,
            ReadOnlySpan<float> scale, ReadOnlySpan<float> inverse, ReadOnlySpan<float> zero)
        {
            Span<float> q = stackalloc float[TileColumns];
            q = q[..width];
            // Codes of the tile, row-major [rows, width]; written out column by column so the stores are contiguous.
            var tile = ArrayPool<byte>.Shared.Rent(rows * width);
            try
            {
                for (int r = 0; r < rows; r++)
                {
                    var w = new ReadOnlySpan<float>(origin + (long)r * stride, width);
                    QuantizeRow(w, q, inverse, zero, scale, dequantize: false);
                    var tileRow = tile.AsSpan(r * width, width);
                    ToBytes(q, tileRow);
                }
                for (int j = 0; j < width; j++)
                {
                    int meta = (c0 + j) * KBlocks + block;
                    sink.Scales![meta] = scale[j];
                    sink.ZeroPoints![meta] = (byte)zero[j];
                    var dst = sink.Codes!.AsSpan(meta * _blockSize, _blockSize);
                    for (int r = 0; r < rows; r++) dst[r] = tile[r * width + j];
                    // The zero-padded tail of a short last block encodes 0, i.e. the zero point.
                    dst[rows..].Fill((byte)zero[j]);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(tile);
            }
        }

        /// <summary>
        /// Scale, 1 / scale and zero point of every column of a tile from its block ranges (lo and hi are overwritten).
        /// Whole-tile vector operations: with blocks of 32 this is a fifth of the fake-quant work if done per element.
        /// </summary>
        private void TileParameters(Span<float> lo, Span<float> hi, int block, int c0, int r0, int rows,
            Span<float> scale, Span<float> inverse, Span<float> zero)
        {
            int width = lo.Length;
            CheckFinite(lo, hi, c0, r0, rows);
            Span<float> ratio = stackalloc float[TileColumns];
            ratio = ratio[..width];
            bool clip = _clip.Length != 0;
            if (clip)
                for (int j = 0; j < width; j++) ratio[j] = ClipRatio(c0 + j, block);

            if (_scheme == Int4Scheme.Asymmetric)
            {
                // Widen to include 0, shrink by the clip ratio, then scale = (hi - lo) / 15.
                TensorPrimitives.Min(lo, 0f, lo);
                TensorPrimitives.Max(hi, 0f, hi);
                if (clip)
                {
                    TensorPrimitives.Multiply(lo, ratio, lo);
                    TensorPrimitives.Multiply(hi, ratio, hi);
                }
                TensorPrimitives.Subtract(hi, lo, scale);
                TensorPrimitives.Divide(scale, MaxCode, scale);
            }
            else
            {
                // The value of largest magnitude lands on code 0: scale = -extreme / 8 (exact: a power of two).
                TensorPrimitives.MaxMagnitude(hi, lo, scale);
                if (clip)
                    TensorPrimitives.Multiply(scale, ratio, scale);
                TensorPrimitives.Multiply(scale, -1f / SymmetricZeroPoint, scale);
            }
            StoreScales(scale, c0, r0);
            TensorPrimitives.Divide(1f, scale, inverse);
            if (_scheme == Int4Scheme.Asymmetric)
            {
                AsymmetricZeroPoints(lo, scale, zero, MaxCode);
            }
            else
            {
                zero.Fill(SymmetricZeroPoint);
            }
        }

        /// <summary>Floors the scale magnitudes and rounds them to the storage type (see <see cref="ScaleStorage.Round"/>).</summary>
        private void StoreScales(Span<float> scale, int c0, int r0)
        {
            if (_scaleType == TensorProto.Types.DataType.Float)
            {
                Span<float> magnitude = stackalloc float[TileColumns];
                magnitude = magnitude[..scale.Length];
                TensorPrimitives.Abs(scale, magnitude);
                TensorPrimitives.Max(magnitude, ScaleStorage.MinScale, magnitude);
                TensorPrimitives.CopySign(magnitude, scale, scale);
            }
            else
            {
                for (int j = 0; j < scale.Length; j++) scale[j] = ScaleStorage.Round(scale[j], _scaleType);
            }
            for (int j = 0; j < scale.Length; j++)
                if (!float.IsFinite(scale[j]))
                    throw new OnnxQuantException(null, $"the 4-bit scale of column {c0 + j}, rows from {r0}, does not fit in {_scaleType}; the weight is too large to quantize with scales of that type", ExitCode.Unsupported);
        }

        private static void CheckFinite(ReadOnlySpan<float> lo, ReadOnlySpan<float> hi, int c0, int r0, int rows)
        {
            // Cheap test first: both sums are finite unless some value is NaN or infinite (or they overflow); then search.
            if (float.IsFinite(TensorPrimitives.Sum(lo) * 0f + TensorPrimitives.Sum(hi) * 0f))
                return;
            for (int j = 0; j < lo.Length; j++)
                if (!float.IsFinite(lo[j]) || !float.IsFinite(hi[j]))
                    throw new OnnxQuantException(null, $"the weight has a NaN or infinite value in column {c0 + j}, rows {r0}..{r0 + rows - 1}; it cannot be quantized", ExitCode.Unsupported);
        }
    }

    // Codes 0..15 as floats to bytes, 32 at a time (truncation is exact: they are whole numbers).
    private static void ToBytes(ReadOnlySpan<float> q, Span<byte> dst)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= q.Length - 32; i += 32)
            {
                var a = Vector256.Narrow(Vector256.ConvertToInt32(Vector256.Create(q[i..])).AsUInt32(), Vector256.ConvertToInt32(Vector256.Create(q[(i + 8)..])).AsUInt32());
                var b = Vector256.Narrow(Vector256.ConvertToInt32(Vector256.Create(q[(i + 16)..])).AsUInt32(), Vector256.ConvertToInt32(Vector256.Create(q[(i + 24)..])).AsUInt32());
                Vector256.Narrow(a, b).CopyTo(dst[i..]);
            }
        }
        for (; i < q.Length; i++) dst[i] = (byte)q[i];
    }

    /// <summary>
    /// One row slice: <c>q = clamp(round(w * inverse) + zero, 0, 15)</c>, written as the code or as <c>(q - zero) * scale</c>.
    /// Vector and scalar tail compute the same thing (round half to even, the same float operations).
    /// </summary>
    private static void QuantizeRow(ReadOnlySpan<float> src, Span<float> dst, ReadOnlySpan<float> inverse, ReadOnlySpan<float> zero, ReadOnlySpan<float> scale, bool dequantize)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var min = Vector<float>.Zero;
            var max = new Vector<float>(MaxCode);
            int step = Vector<float>.Count;
            for (; i <= src.Length - step; i += step)
            {
                var z = new Vector<float>(zero[i..]);
                var q = Vector.Round(new Vector<float>(src[i..]) * new Vector<float>(inverse[i..])) + z;
                q = Vector.Min(Vector.Max(q, min), max);
                (dequantize ? (q - z) * new Vector<float>(scale[i..]) : q).CopyTo(dst[i..]);
            }
        }
        for (; i < src.Length; i++)
        {
            float q = Math.Clamp(MathF.Round(src[i] * inverse[i]) + zero[i], 0f, MaxCode);
            dst[i] = dequantize ? (q - zero[i]) * scale[i] : q;
        }
    }
}
