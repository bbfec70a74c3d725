using System.Buffers;
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
        /// [N, k_blocks, block / 2] layout, one gather per byte. The bytes are those of <see cref="WriteCodes"/>
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
                    var dst = sink.Packed.AsSpan(meta * half, half);
                    for (int p = 0, at = j; p < half; p++, at += width) dst[p] = pairs[at];
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(pairs);
            }
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
