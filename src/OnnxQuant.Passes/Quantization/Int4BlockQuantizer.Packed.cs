using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;

namespace OnnxQuant.Quantization;

/// <summary>The packed output path of <see cref="Int4BlockQuantizer"/>: codes straight into MatMulNBits' layout (the streamed 4-bit rewrite).</summary>
public static partial class Int4BlockQuantizer
{
    internal sealed partial class Plan
    {
        /// <summary>
        /// The codes of a tile straight into MatMulNBits' packed layout: rows 2p and 2p + 1 become one row of bytes
        /// (low and high nibble, one fused pass per row pair: <see cref="QuantizePair"/>), so only half as many bytes are
        /// transposed into the [N, k_blocks, block / 2] layout, 8 x 8 bytes at a time (<see cref="Transpose8"/>). The
        /// bytes are those of <see cref="WriteCodes"/> followed by <see cref="MatMulNBitsPacker.PackPairs"/> (tested bit
        /// for bit).
        /// </summary>
        private unsafe void WritePacked(CodeSink sink, int tileIndex, int block, int c0, int width, int rows, float* origin, int stride,
            ReadOnlySpan<float> scale, ReadOnlySpan<float> inverse, ReadOnlySpan<float> zero)
        {
            int half = _blockSize / 2;
            Span<byte> zeroCodes = stackalloc byte[TileColumns];
            zeroCodes = zeroCodes[..width];
            // The zero-padded tail of a short last block encodes 0, i.e. the zero point.
            ToBytes(zero, zeroCodes);
            bool measure = sink.Errors is not null;
            double error = 0, norm = 0;
            var pairs = ArrayPool<byte>.Shared.Rent(half * width);
            try
            {
                for (int p = 0; p < half; p++)
                {
                    int r = 2 * p;
                    var pairRow = pairs.AsSpan(p * width, width);
                    if (r >= rows)
                    {
                        Nibbles(zeroCodes, zeroCodes, pairRow);
                        continue;
                    }
                    var low = new ReadOnlySpan<float>(origin + (long)r * stride, width);
                    var high = r + 1 < rows ? new ReadOnlySpan<float>(origin + (long)(r + 1) * stride, width) : default;
                    QuantizePair(low, high, pairRow, inverse, zero, scale, measure, ref error, ref norm);
                }
                if (sink.Errors is not null)
                {
                    sink.Errors[tileIndex] = error;
                    sink.Norms![tileIndex] = norm;
                }
                for (int j = 0; j < width; j++)
                {
                    int meta = (c0 + j) * KBlocks + block;
                    sink.Scales![meta] = scale[j];
                    sink.ZeroPoints![meta] = zeroCodes[j];
                }
                // [half, width] -> each column's half bytes, 8 x 8 bytes at a time where both sides allow.
                int wide = half % 8 == 0 ? width / 8 * 8 : 0;
                for (int j = 0; j < wide; j += 8)
                    for (int p = 0; p < half; p += 8)
                        Transpose8(pairs.AsSpan(p * width + j), width, sink.Packed!, ((c0 + j) * KBlocks + block) * half + p, KBlocks * half);
                for (int j = wide; j < width; j++)
                {
                    var dst = sink.Packed.AsSpan(((c0 + j) * KBlocks + block) * half, half);
                    for (int p = 0, at = j; p < half; p++, at += width) dst[p] = pairs[at];
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(pairs);
            }
        }
    }

    /// <summary>
    /// Writes the 8 x 8 bytes at <paramref name="source"/> (rows <paramref name="sourceStride"/> apart) transposed: row i
    /// of the result, column i of the source, goes to <paramref name="destination"/> at <paramref name="at"/> + i ·
    /// <paramref name="destinationStride"/>. Three rounds of swapping 1-, 2- and 4-byte halves between register pairs
    /// move 64 bytes with 8 loads and 8 stores instead of 64 of each.
    /// </summary>
    private static void Transpose8(ReadOnlySpan<byte> source, int sourceStride, byte[] destination, int at, int destinationStride)
    {
        ulong x0 = Read(source, 0), x1 = Read(source, sourceStride), x2 = Read(source, 2 * sourceStride), x3 = Read(source, 3 * sourceStride);
        ulong x4 = Read(source, 4 * sourceStride), x5 = Read(source, 5 * sourceStride), x6 = Read(source, 6 * sourceStride), x7 = Read(source, 7 * sourceStride);
        Swap(ref x0, ref x1, 8, 0x00FF00FF00FF00FFUL);
        Swap(ref x2, ref x3, 8, 0x00FF00FF00FF00FFUL);
        Swap(ref x4, ref x5, 8, 0x00FF00FF00FF00FFUL);
        Swap(ref x6, ref x7, 8, 0x00FF00FF00FF00FFUL);
        Swap(ref x0, ref x2, 16, 0x0000FFFF0000FFFFUL);
        Swap(ref x1, ref x3, 16, 0x0000FFFF0000FFFFUL);
        Swap(ref x4, ref x6, 16, 0x0000FFFF0000FFFFUL);
        Swap(ref x5, ref x7, 16, 0x0000FFFF0000FFFFUL);
        Swap(ref x0, ref x4, 32, 0x00000000FFFFFFFFUL);
        Swap(ref x1, ref x5, 32, 0x00000000FFFFFFFFUL);
        Swap(ref x2, ref x6, 32, 0x00000000FFFFFFFFUL);
        Swap(ref x3, ref x7, 32, 0x00000000FFFFFFFFUL);
        var d = destination.AsSpan();
        BinaryPrimitives.WriteUInt64LittleEndian(d[at..], x0);
        BinaryPrimitives.WriteUInt64LittleEndian(d[(at + destinationStride)..], x1);
        BinaryPrimitives.WriteUInt64LittleEndian(d[(at + 2 * destinationStride)..], x2);
        BinaryPrimitives.WriteUInt64LittleEndian(d[(at + 3 * destinationStride)..], x3);
        BinaryPrimitives.WriteUInt64LittleEndian(d[(at + 4 * destinationStride)..], x4);
        BinaryPrimitives.WriteUInt64LittleEndian(d[(at + 5 * destinationStride)..], x5);
        BinaryPrimitives.WriteUInt64LittleEndian(d[(at + 6 * destinationStride)..], x6);
        BinaryPrimitives.WriteUInt64LittleEndian(d[(at + 7 * destinationStride)..], x7);

        static ulong Read(ReadOnlySpan<byte> s, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(s[offset..]);

        // Exchanges the upper `shift` bits of each 2·shift-bit group of `a` with the lower ones of `b`: byte (or pair,
        // or quad) c+1 of row r trades places with byte c of row r+1, one level of the recursive transpose.
        static void Swap(ref ulong a, ref ulong b, int shift, ulong mask)
        {
            ulong t = ((a >> shift) ^ b) & mask;
            b ^= t;
            a ^= t << shift;
        }
    }

    /// <summary>
    /// Rows 2p and 2p + 1 of a tile straight to packed bytes: each code is <see cref="QuantizeRow"/>'s, the byte is
    /// <c>low + 16 · high</c> (formed in float, exact for 0..255), and each row adds Σ (w - (q - zero) · scale)² and
    /// Σ w² with the float operations of dequantizing its stored codes, in one pass over the row pair. An empty
    /// <paramref name="high"/> (a short last block) stands for the zero point's code and adds no error.
    /// </summary>
    private static void QuantizePair(ReadOnlySpan<float> low, ReadOnlySpan<float> high, Span<byte> packed,
        ReadOnlySpan<float> inverse, ReadOnlySpan<float> zero, ReadOnlySpan<float> scale, bool measure, ref double error, ref double norm)
    {
        bool pair = !high.IsEmpty;
        int width = low.Length, i = 0;
        float e0 = 0, m0 = 0, e1 = 0, m1 = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int step = Vector<float>.Count;
            var ev0 = Vector<float>.Zero;
            var mv0 = Vector<float>.Zero;
            var ev1 = Vector<float>.Zero;
            var mv1 = Vector<float>.Zero;
            Span<uint> lanes = stackalloc uint[4 * Vector<uint>.Count];
            // Four vectors of codes at a time narrow to one vector of bytes; a shorter rest goes through the lane buffer.
            while (i <= width - step)
            {
                int chunks = Math.Min(4, (width - i) / step);
                for (int c = 0; c < chunks; c++, i += step)
                {
                    var z = new Vector<float>(zero[i..]);
                    var inv = new Vector<float>(inverse[i..]);
                    var s = new Vector<float>(scale[i..]);
                    var x0 = new Vector<float>(low[i..]);
                    var q0 = Vector.Min(Vector.Max(Vector.Round(x0 * inv) + z, Vector<float>.Zero), new Vector<float>(MaxCode));
                    var d0 = x0 - (q0 - z) * s;
                    ev0 += d0 * d0;
                    mv0 += x0 * x0;
                    var q1 = z;
                    if (pair)
                    {
                        var x1 = new Vector<float>(high[i..]);
                        q1 = Vector.Min(Vector.Max(Vector.Round(x1 * inv) + z, Vector<float>.Zero), new Vector<float>(MaxCode));
                        var d1 = x1 - (q1 - z) * s;
                        ev1 += d1 * d1;
                        mv1 += x1 * x1;
                    }
                    Vector.ConvertToUInt32(q0 + q1 * new Vector<float>(16f)).CopyTo(lanes[(c * step)..]);
                }
                int start = i - chunks * step;
                if (chunks == 4)
                {
                    var a = Vector.Narrow(new Vector<uint>(lanes), new Vector<uint>(lanes[step..]));
                    var b = Vector.Narrow(new Vector<uint>(lanes[(2 * step)..]), new Vector<uint>(lanes[(3 * step)..]));
                    Vector.Narrow(a, b).CopyTo(packed[start..]);
                }
                else
                {
                    for (int j = 0; j < chunks * step; j++) packed[start + j] = (byte)lanes[j];
                }
            }
            e0 = Vector.Sum(ev0);
            m0 = Vector.Sum(mv0);
            e1 = Vector.Sum(ev1);
            m1 = Vector.Sum(mv1);
        }
        for (; i < width; i++)
        {
            float q0 = Math.Clamp(MathF.Round(low[i] * inverse[i]) + zero[i], 0f, MaxCode);
            float d0 = low[i] - (q0 - zero[i]) * scale[i];
            e0 += d0 * d0;
            m0 += low[i] * low[i];
            float q1 = zero[i];
            if (pair)
            {
                q1 = Math.Clamp(MathF.Round(high[i] * inverse[i]) + zero[i], 0f, MaxCode);
                float d1 = high[i] - (q1 - zero[i]) * scale[i];
                e1 += d1 * d1;
                m1 += high[i] * high[i];
            }
            packed[i] = (byte)(q0 + q1 * 16f);
        }
        if (!measure)
            return;
        error += e0;
        norm += m0;
        if (pair)
        {
            error += e1;
            norm += m1;
        }
    }

    // low | high << 4 per column: codes are 0..15, so the shift never carries into the next byte.
    private static void Nibbles(ReadOnlySpan<byte> low, ReadOnlySpan<byte> high, Span<byte> packed)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
            for (; i <= low.Length - Vector<byte>.Count; i += Vector<byte>.Count)
                (new Vector<byte>(low[i..]) | Vector.ShiftLeft(new Vector<byte>(high[i..]), 4)).CopyTo(packed[i..]);
        for (; i < low.Length; i++)
            packed[i] = (byte)(low[i] | (high[i] << 4));
    }
}
