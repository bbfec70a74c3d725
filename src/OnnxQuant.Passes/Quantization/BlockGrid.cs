using System.Numerics.Tensors;
using Onnx;

namespace OnnxQuant.Quantization;

/// <summary>
/// The quantization grid of one block row at 4 or 8 bits: per column a scale, its inverse and a zero point, computed from
/// the block's per-column range with the same float operations as <see cref="Int4BlockQuantizer"/> (so at 4 bits a row
/// rounded here gets the code RTN would give it). GPTQ uses it to round one input row at a time against grids it
/// computes from weights it has already updated; mixed precision uses it for 8-bit round-to-nearest.
/// </summary>
public sealed class BlockGrid
{
    private readonly float _maxCode, _half;
    private readonly Int4Scheme _scheme;
    private readonly TensorProto.Types.DataType _scaleType;

    public BlockGrid(int bits, int width, Int4QuantOptions options)
    {
        if (bits is not (4 or 8))
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "block quantization writes 4 or 8 bits");
        options.Validate();
        Bits = bits;
        _maxCode = (1 << bits) - 1;
        _half = 1 << (bits - 1);
        _scheme = options.Scheme;
        _scaleType = options.ScaleType;
        Scale = new float[width];
        Inverse = new float[width];
        Zero = new float[width];
    }

    public int Bits { get; }

    public float[] Scale { get; }

    public float[] Inverse { get; }

    public float[] Zero { get; }

    /// <summary>
    /// Sets the grid from the rows [first, first + count) of a row-major [rows, width] matrix: asymmetric
    /// scale = (max(hi, 0) - min(lo, 0)) / (2^bits - 1), zp = clamp(round(-lo / scale)); symmetric scale = -extreme / 2^(bits-1).
    /// </summary>
    public void Fit(ReadOnlySpan<float> matrix, int width, int first, int count)
    {
        var loArray = new float[width];
        var hiArray = new float[width];
        matrix.Slice(first * width, width).CopyTo(loArray);
        matrix.Slice(first * width, width).CopyTo(hiArray);
        for (int r = 1; r < count; r++)
        {
            var row = matrix.Slice((first + r) * width, width);
            TensorPrimitives.Min(loArray, row, loArray);
            TensorPrimitives.Max(hiArray, row, hiArray);
        }
        FitRange(loArray, hiArray);
    }

    /// <summary>Sets the grid from per-column ranges (both overwritten).</summary>
    public void FitRange(Span<float> lo, Span<float> hi)
    {
        for (int j = 0; j < lo.Length; j++)
            if (!float.IsFinite(lo[j]) || !float.IsFinite(hi[j]))
                throw new OnnxQuantException(null, $"the weight has a NaN or infinite value in column {j}; it cannot be quantized", ExitCode.Unsupported);
        var scale = Scale.AsSpan(0, lo.Length);
        if (_scheme == Int4Scheme.Asymmetric)
        {
            TensorPrimitives.Min(lo, 0f, lo);
            TensorPrimitives.Max(hi, 0f, hi);
            TensorPrimitives.Subtract(hi, lo, scale);
            TensorPrimitives.Divide(scale, _maxCode, scale);
        }
        else
        {
            TensorPrimitives.MaxMagnitude(hi, lo, scale);
            TensorPrimitives.Multiply(scale, -1f / _half, scale);
        }
        for (int j = 0; j < scale.Length; j++)
        {
            scale[j] = _scaleType == TensorProto.Types.DataType.Float
                ? MathF.CopySign(MathF.Max(MathF.Abs(scale[j]), ScaleStorage.MinScale), scale[j])
                : ScaleStorage.Round(scale[j], _scaleType);
            if (!float.IsFinite(scale[j]))
                throw new OnnxQuantException(null, $"the {Bits}-bit scale of column {j} does not fit in {_scaleType}; the weight is too large to quantize with scales of that type", ExitCode.Unsupported);
        }
        TensorPrimitives.Divide(1f, scale, Inverse.AsSpan(0, lo.Length));
        var zero = Zero.AsSpan(0, lo.Length);
        if (_scheme == Int4Scheme.Asymmetric)
        {
            Int4BlockQuantizer.AsymmetricZeroPoints(lo, scale, zero, _maxCode);
        }
        else
        {
            zero.Fill(_half);
        }
    }

    /// <summary>Rounds one row: <paramref name="codes"/> gets clamp(round(w / s) + zp) and <paramref name="dequantized"/> (q - zp) s.</summary>
    public void Round(ReadOnlySpan<float> row, Span<float> codes, Span<float> dequantized)
    {
        int width = row.Length;
        TensorPrimitives.Multiply(row, Inverse.AsSpan(0, width), codes);
        TensorPrimitives.Round(codes, codes);
        TensorPrimitives.Add(codes, Zero.AsSpan(0, width), codes);
        TensorPrimitives.Max(codes, 0f, codes);
        TensorPrimitives.Min(codes, _maxCode, codes);
        TensorPrimitives.Subtract(codes, Zero.AsSpan(0, width), dequantized);
        TensorPrimitives.Multiply(dequantized, Scale.AsSpan(0, width), dequantized);
    }
}
