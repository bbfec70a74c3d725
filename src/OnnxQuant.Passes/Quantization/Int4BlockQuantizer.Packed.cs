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
        /// (low and high nibble, vectorised across the columns), so only half as many bytes are transposed into the
        /// [N, k_blocks, block / 2] layout, 8 x 8 bytes at a time (<see cref="Transpose8"/>). The bytes are those of <see cref="WriteCodes"/>
        /// followed by <see cref="MatMulNBitsPacker.PackPairs"/> (tested bit for bit).
        /// </summary>
        private unsafe void WritePacked(CodeSink sink, int tileIndex, int block, int c0, int width, int rows, float* origin, int stride,
            ReadOnlySpan<float> scale, ReadOnlySpan<float> inverse, ReadOnlySpan<float> zero)
        {
            int half = _blockSize / 2;
            Span<float> q = stackalloc float[TileColumns];
            Span<byte> low = stackalloc byte[TileColumns];
            Span<byte> high = stackalloc byte[TileColumns];
            Span<byte> zeroCodes = stackalloc byte[TileColumns];
            q = q[..width];
            low = low[..width];
            high = high[..width];
            zeroCodes = zeroCodes[..width];
            // The zero-padded tail of a short last block encodes 0, i.e. the zero point.
            ToBytes(zero, zeroCodes);
            double error = 0, norm = 0;
            var pairs = ArrayPool<byte>.Shared.Rent(half * width);
            try
            {
                for (int p = 0; p < half; p++)
                {
                    for (int side = 0; side < 2; side++)
                    {
                        int r = 2 * p + side;
                        var codes = side == 0 ? low : high;
                        if (r >= rows)
                        {
                            zeroCodes.CopyTo(codes);
                            continue;
                        }
                        var w = new ReadOnlySpan<float>(origin + (long)r * stride, width);
                        QuantizeRow(w, q, inverse, zero, scale, dequantize: false);
                        ToBytes(q, codes);
                        if (sink.Errors is not null)
                            AddRowError(w, q, zero, scale, ref error, ref norm);
                    }
                    Nibbles(low, high, pairs.AsSpan(p * width, width));
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

    /// <summary>
    /// Adds Σ (w - (q - zero) · scale)² and Σ w² of one row slice: the same float operations as dequantizing the stored
    /// codes, in one pass (four separate vector passes before).
    /// </summary>
    private static void AddRowError(ReadOnlySpan<float> w, ReadOnlySpan<float> q, ReadOnlySpan<float> zero, ReadOnlySpan<float> scale, ref double error, ref double norm)
    {
        int i = 0;
        float e = 0, m = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var ev = Vector<float>.Zero;
            var mv = Vector<float>.Zero;
            for (; i <= w.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                var x = new Vector<float>(w[i..]);
                var d = x - (new Vector<float>(q[i..]) - new Vector<float>(zero[i..])) * new Vector<float>(scale[i..]);
                ev += d * d;
                mv += x * x;
            }
            e = Vector.Sum(ev);
            m = Vector.Sum(mv);
        }
        for (; i < w.Length; i++)
        {
            float d = w[i] - (q[i] - zero[i]) * scale[i];
            e += d * d;
            m += w[i] * w[i];
        }
        error += e;
        norm += m;
    }
}
