using Onnx;

namespace OnnxQuant.Quantization;

/// <summary>
/// A [rows, width] table quantized row by row in blocks of <see cref="BlockSize"/> along the row (the last block of a
/// row may be short): codes [rows, width] unpacked, one scale and zero point per block, [rows, blocks per row]. This is
/// the grouping of com.microsoft GatherBlockQuantized (quantize_axis = last) and of MatMulNBits' B read as [N, K]
/// (docs/architecture.md, "Quantized embeddings and LM head").
/// </summary>
public sealed record RowBlocks(int Rows, int Width, int Bits, int BlockSize, bool Symmetric, TensorProto.Types.DataType ScaleType,
    byte[] Codes, float[] Scales, byte[] ZeroPoints)
{
    public int BlocksPerRow => (Width + BlockSize - 1) / BlockSize;

    /// <summary>(code - zero point) * scale for one element, as the kernels compute it.</summary>
    public float Dequantize(int row, int column)
    {
        int block = row * BlocksPerRow + column / BlockSize;
        return (Codes[(long)row * Width + column] - ZeroPoints[block]) * Scales[block];
    }

    /// <summary>The dequantized row <paramref name="row"/> into <paramref name="destination"/> (<see cref="Width"/> values).</summary>
    public void DequantizeRow(int row, Span<float> destination)
    {
        for (int column = 0; column < Width; column++)
            destination[column] = Dequantize(row, column);
    }
}

/// <summary>
/// Round-to-nearest 2^bits-level block quantization of a row-major table along its rows (4 or 8 bits). Asymmetric
/// blocks cover [min(min, 0), max(max, 0)] with a zero point; symmetric blocks use the kernels' implicit zero point
/// 2^(bits-1) and max |w| / (2^(bits-1) - 1) as the scale. Scales are rounded to their storage type before the codes
/// are computed (<see cref="ScaleStorage"/>), so the stored table dequantizes to exactly what was measured.
/// </summary>
public static class RowBlockQuantizer
{
    public static bool IsSupportedBits(int bits) => bits is 4 or 8;

    /// <summary>Quantizes <paramref name="table"/> ([rows, width] row-major; read, not copied: a 7B vocabulary table is GBs).</summary>
    public static RowBlocks Quantize(float[] table, int rows, int width, int bits, int blockSize, bool symmetric,
        TensorProto.Types.DataType scaleType = TensorProto.Types.DataType.Float)
    {
        if (!IsSupportedBits(bits))
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "row blocks are 4 or 8 bits");
        if (blockSize < 1)
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "the block size must be positive");
        if (table.Length != (long)rows * width)
            throw new ArgumentException($"{table.Length} values for a [{rows}, {width}] table");
        ScaleStorage.CheckSupported(scaleType);
        int perRow = (width + blockSize - 1) / blockSize;
        var codes = new byte[(long)rows * width];
        var scales = new float[(long)rows * perRow];
        var zeroPoints = new byte[(long)rows * perRow];
        var values = table;
        int maxCode = (1 << bits) - 1, half = 1 << (bits - 1);
        // Rows are independent: parallel over row ranges once the table is big enough to pay for it.
        Parallel.For(0, rows, new ParallelOptions { MaxDegreeOfParallelism = (long)rows * width > 1 << 16 ? -1 : 1 }, row =>
        {
            for (int b = 0; b < perRow; b++)
            {
                int start = b * blockSize, length = Math.Min(blockSize, width - start);
                var block = values.AsSpan(row * width + start, length);
                float scale;
                int zero;
                if (symmetric)
                {
                    float absMax = 0;
                    foreach (float v in block) absMax = MathF.Max(absMax, MathF.Abs(v));
                    scale = ScaleStorage.Round(absMax / (half - 1), scaleType);
                    zero = half;
                }
                else
                {
                    float min = 0, max = 0;
                    foreach (float v in block) { min = MathF.Min(min, v); max = MathF.Max(max, v); }
                    scale = ScaleStorage.Round((max - min) / maxCode, scaleType);
                    zero = Math.Clamp((int)MathF.Round(-min / scale, MidpointRounding.ToEven), 0, maxCode);
                }
                if (!float.IsFinite(scale))
                    throw new OnnxQuantException(null, $"row {row} block {b}: the scale {scale} does not fit {scaleType}", ExitCode.Unsupported);
                int index = row * perRow + b;
                scales[index] = scale;
                zeroPoints[index] = (byte)zero;
                float inverse = 1f / scale;
                var target = codes.AsSpan(row * width + start, length);
                for (int i = 0; i < length; i++)
                    target[i] = (byte)Math.Clamp((int)MathF.Round(block[i] * inverse, MidpointRounding.ToEven) + zero, 0, maxCode);
            }
        });
        return new RowBlocks(rows, width, bits, blockSize, symmetric, scaleType, codes, scales, zeroPoints);
    }
}
