using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using OnnxQuant.Numerics;

namespace OnnxQuant.Quantization;

/// <summary>A [K, N] weight as symmetric int8 (zero point 0): <c>w ≈ Values[k, n] * Scales[n]</c> (or Scales[0] per tensor).</summary>
public sealed record Int8Weights(int K, int N, sbyte[] Values, float[] Scales)
{
    /// <summary>The weight back in [K, N] float.</summary>
    public float[] Dequantize()
    {
        var result = new float[Values.Length];
        var values = Values;
        var scales = Scales;
        int n = N;
        ParallelWork.For(K, values.Length, row =>
        {
            var dst = result.AsSpan(row * n, n);
            var src = values.AsSpan(row * n, n);
            for (int j = 0; j < n; j++) dst[j] = src[j];
            if (scales.Length == 1)
                TensorPrimitives.Multiply(dst, scales[0], dst);
            else
                TensorPrimitives.Multiply(dst, scales, dst);
        });
        return result;
    }
}

/// <summary>
/// Symmetric int8 quantization for W8A8 (zero point 0 everywhere, the form the CUDA EP's MatMulInteger runs).
/// <para>
/// Weights: <c>scale = absmax / 127</c> per output channel (column of [K, N]) or per tensor, <c>q = round(w / scale)</c>;
/// no value is clipped, so <c>|w - q * scale| &lt;= scale / 2</c> for every element (tested). Reduced range uses ±63
/// (7 bits): ONNX Runtime's CPU u8 x s8 kernel without VNNI saturates 16-bit pair sums with full-range weights.
/// </para>
/// <para>
/// Activations follow QuantizeLinear to int8: <c>q = saturate(round_half_even(x / scale))</c> in [-128, 127], with a
/// static scale (calibrated, see <see cref="QuantizeActivationScale"/>) or per token (row absmax / 127, computed at run
/// time). Fake-quant helpers quantize and dequantize in place, for SmoothQuant's alpha search.
/// </para>
/// A zero channel gets <see cref="ScaleStorage.MinScale"/> as its scale, never 0.
/// </summary>
public static class Int8Quantizer
{
    public const int FullRangeMax = 127;
    public const int ReducedRangeMax = 63;
    private const float ActivationMin = -128f, ActivationMax = 127f;

    public static int MaxCode(bool reducedRange) => reducedRange ? ReducedRangeMax : FullRangeMax;

    /// <summary>max |w[:, n]| for each column of a [K, N] weight.</summary>
    public static float[] ColumnAbsMax(ReadOnlySpan<float> weight, int k, int n)
    {
        CheckShape(weight.Length, k, n);
        var result = new float[n];
        const int chunk = 256;
        int chunks = (n + chunk - 1) / chunk;
        unsafe
        {
            fixed (float* w = weight)
            {
                nint address = (nint)w;
                // Column chunks are independent; each walks all rows over its contiguous slice.
                ParallelWork.For(chunks, weight.Length, c =>
                {
                    int c0 = c * chunk, width = Math.Min(chunk, n - c0);
                    var acc = result.AsSpan(c0, width);
                    for (int row = 0; row < k; row++)
                        TensorPrimitives.MaxMagnitude(acc, new ReadOnlySpan<float>((float*)address + (long)row * n + c0, width), acc);
                    TensorPrimitives.Abs(acc, acc);
                });
            }
        }
        return result;
    }

    /// <summary>The weight scale for a channel of absolute maximum <paramref name="absMax"/>.</summary>
    public static float WeightScale(float absMax, bool reducedRange = false) =>
        MathF.Max(absMax / MaxCode(reducedRange), ScaleStorage.MinScale);

    /// <summary>The static activation scale for a calibrated absolute maximum: <c>absmax / 127</c>, never 0.</summary>
    public static float QuantizeActivationScale(float absMax)
    {
        if (!float.IsFinite(absMax) || absMax < 0)
            throw new ArgumentOutOfRangeException(nameof(absMax), absMax, "an activation absolute maximum must be finite and >= 0");
        return MathF.Max(absMax / FullRangeMax, ScaleStorage.MinScale);
    }

    /// <summary>Per-output-channel int8: one scale per column of the [K, N] weight.</summary>
    public static Int8Weights QuantizePerChannel(ReadOnlySpan<float> weight, int k, int n, bool reducedRange = false)
    {
        var scales = ChannelScales(ColumnAbsMax(weight, k, n), reducedRange);
        return new Int8Weights(k, n, QuantizeRows(weight, k, n, scales, reducedRange), scales);
    }

    /// <summary>
    /// <see cref="QuantizePerChannel(ReadOnlySpan{float}, int, int, bool)"/> of a weight read a band of rows at a time, so its
    /// fp32 values never exist whole: one pass over row bands (about 1 MB of fp32 each) for the column maxima, one for
    /// the codes (a band's storage released after it). Rows in <paramref name="zeroRows"/> count as zero, as if cleared
    /// first (their channels are computed in float). The same scales and codes as the in-memory overload (tested).
    /// </summary>
    public static Int8Weights QuantizePerChannel(IWeightTiles weight, int k, int n, bool reducedRange = false, IReadOnlyCollection<int>? zeroRows = null)
    {
        if (k <= 0 || n <= 0 || (long)k * n > Array.MaxLength)
            throw new ArgumentException($"a [{k}, {n}] weight cannot be quantized as one int8 tensor");
        var zero = zeroRows is { Count: > 0 } ? zeroRows.ToHashSet() : null;
        int bandRows = Math.Max(1, (1 << 18) / n), bands = (k + bandRows - 1) / bandRows;
        // Column maxima by row bands, each worker into its own partial maxima; a maximum does not depend on grouping.
        var partials = new System.Collections.Concurrent.ConcurrentBag<float[]>();
        ParallelWork.Run(0, bands, -1, () =>
        {
            var partial = new float[n];
            partials.Add(partial);
            return (Band: new float[bandRows * n], Max: partial);
        }, (b, local) =>
        {
            int r0 = b * bandRows, rows = Math.Min(bandRows, k - r0);
            if (weight.TryFoldColumnMaxMagnitude(r0, rows, local.Max, zero))
                return;
            weight.ReadTile(r0, rows, 0, n, local.Band.AsSpan(0, rows * n));
            for (int r = 0; r < rows; r++)
                if (zero is null || !zero.Contains(r0 + r))
                    TensorPrimitives.MaxMagnitude(local.Max, local.Band.AsSpan(r * n, n), local.Max);
        });
        var absMax = new float[n];
        foreach (var partial in partials)
            TensorPrimitives.MaxMagnitude(absMax, partial, absMax);
        TensorPrimitives.Abs(absMax, absMax);
        var scales = ChannelScales(absMax, reducedRange);
        var inverse = scales.Select(s => 1f / s).ToArray();
        float max = MaxCode(reducedRange);
        var result = GC.AllocateUninitializedArray<sbyte>(k * n);
        ParallelWork.Run(0, bands, -1, () => new float[bandRows * n], (b, band) =>
        {
            int r0 = b * bandRows, rows = Math.Min(bandRows, k - r0);
            weight.ReadTile(r0, rows, 0, n, band.AsSpan(0, rows * n));
            for (int r = 0; r < rows; r++)
            {
                var codes = result.AsSpan((r0 + r) * n, n);
                if (zero is not null && zero.Contains(r0 + r))
                    codes.Clear();
                else
                    QuantizeRow(band.AsSpan(r * n, n), inverse, max, codes);
            }
            weight.Done(r0, rows);
        });
        return new Int8Weights(k, n, result, scales);
    }

    // One scale per column from its absolute maximum; a NaN or infinite maximum is reported with its column.
    private static float[] ChannelScales(float[] absMax, bool reducedRange)
    {
        var scales = new float[absMax.Length];
        for (int j = 0; j < absMax.Length; j++) scales[j] = WeightScale(CheckFinite(absMax[j], j), reducedRange);
        return scales;
    }

    /// <summary>Per-tensor int8: one scale for the whole weight (Scales has one value).</summary>
    public static Int8Weights QuantizePerTensor(ReadOnlySpan<float> weight, int k, int n, bool reducedRange = false)
    {
        CheckShape(weight.Length, k, n);
        float absMax = CheckFinite(MathF.Abs(TensorPrimitives.MaxMagnitude(weight)), -1);
        var scales = new[] { WeightScale(absMax, reducedRange) };
        return new Int8Weights(k, n, QuantizeRows(weight, k, n, scales, reducedRange), scales);
    }

    /// <summary>Quantizes and dequantizes a [K, N] weight in place with per-column scales (what W8A8 will compute with).</summary>
    public static void FakeQuantizeWeightsPerChannel(Span<float> weight, int k, int n, bool reducedRange = false)
    {
        var scales = ChannelScales(ColumnAbsMax(weight, k, n), reducedRange);
        var inverse = new float[n];
        for (int j = 0; j < n; j++) inverse[j] = 1f / scales[j];
        float max = MaxCode(reducedRange);
        unsafe
        {
            fixed (float* w = weight)
            {
                nint address = (nint)w;
                ParallelWork.For(k, weight.Length, row =>
                {
                    var span = new Span<float>((float*)address + (long)row * n, n);
                    TensorPrimitives.Multiply(span, inverse, span);
                    TensorPrimitives.Round(span, span);
                    ClampInPlace(span, -max, max);
                    TensorPrimitives.Multiply(span, scales, span);
                });
            }
        }
    }

    /// <summary>QuantizeLinear + DequantizeLinear with one static scale, in place.</summary>
    public static void FakeQuantizeActivationsPerTensor(Span<float> x, float scale)
    {
        if (!(scale > 0) || !float.IsFinite(scale))
            throw new ArgumentOutOfRangeException(nameof(scale), scale, "an activation scale must be finite and > 0");
        FakeQuantizeActivation(x, scale);
    }

    /// <summary>
    /// Per-token dynamic quantization of a [rows, cols] activation in place: each row gets <c>absmax / 127</c>
    /// (the run-time <c>Abs -> ReduceMax -> Div</c> chain), then QuantizeLinear + DequantizeLinear.
    /// </summary>
    public static void FakeQuantizeActivationsPerToken(Span<float> x, int rows, int cols)
    {
        CheckShape(x.Length, rows, cols);
        unsafe
        {
            fixed (float* p = x)
            {
                nint address = (nint)p;
                ParallelWork.For(rows, x.Length, row =>
                {
                    var span = new Span<float>((float*)address + (long)row * cols, cols);
                    float absMax = MathF.Abs(TensorPrimitives.MaxMagnitude(span));
                    FakeQuantizeActivation(span, QuantizeActivationScale(CheckFinite(absMax, row)));
                });
            }
        }
    }

    private static void FakeQuantizeActivation(Span<float> x, float scale)
    {
        // Division, not a reciprocal multiply: QuantizeLinear divides, and ties must round the same way.
        TensorPrimitives.Divide(x, scale, x);
        TensorPrimitives.Round(x, x);
        ClampInPlace(x, ActivationMin, ActivationMax);
        TensorPrimitives.Multiply(x, scale, x);
    }

    private static sbyte[] QuantizeRows(ReadOnlySpan<float> weight, int k, int n, float[] scales, bool reducedRange)
    {
        var result = GC.AllocateUninitializedArray<sbyte>(weight.Length);
        float max = MaxCode(reducedRange);
        var inverse = scales.Select(s => 1f / s).ToArray();
        unsafe
        {
            fixed (float* w = weight)
            {
                nint address = (nint)w;
                ParallelWork.For(k, weight.Length, row =>
                {
                    var src = new ReadOnlySpan<float>((float*)address + (long)row * n, n);
                    QuantizeRow(src, inverse, max, result.AsSpan(row * n, n));
                });
            }
        }
        return result;
    }

    /// <summary>
    /// <c>clamp(round(w * inverse), -max, max)</c> as int8, in one pass: the same float operations, in the same order, as
    /// multiplying, rounding (to even) and clamping whole rows one after another, with no scratch row.
    /// <paramref name="inverse"/> has one value (per tensor) or one per column.
    /// </summary>
    private static void QuantizeRow(ReadOnlySpan<float> src, ReadOnlySpan<float> inverse, float max, Span<sbyte> dst)
    {
        bool perTensor = inverse.Length == 1;
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var hi = Vector256.Create(max);
            var lo = Vector256.Create(-max);
            var single = Vector256.Create(inverse[0]);
            for (; i <= src.Length - 32; i += 32)
            {
                var a = Vector256.Narrow(Code8(src, inverse, perTensor, single, lo, hi, i), Code8(src, inverse, perTensor, single, lo, hi, i + 8));
                var b = Vector256.Narrow(Code8(src, inverse, perTensor, single, lo, hi, i + 16), Code8(src, inverse, perTensor, single, lo, hi, i + 24));
                Vector256.Narrow(a, b).CopyTo(dst[i..]);
            }
        }
        for (; i < src.Length; i++)
            dst[i] = (sbyte)Math.Clamp(MathF.Round(src[i] * (perTensor ? inverse[0] : inverse[i])), -max, max);
    }

    // Eight codes from element at on (see QuantizeRow).
    private static Vector256<int> Code8(ReadOnlySpan<float> src, ReadOnlySpan<float> inverse, bool perTensor, Vector256<float> single,
        Vector256<float> lo, Vector256<float> hi, int at)
    {
        var scale = perTensor ? single : Vector256.Create(inverse[at..]);
        return Vector256.ConvertToInt32(Vector256.Min(Vector256.Max(Vector256.Round(Vector256.Create(src[at..]) * scale), lo), hi));
    }

    private static void ClampInPlace(Span<float> x, float min, float max)
    {
        TensorPrimitives.Max(x, min, x);
        TensorPrimitives.Min(x, max, x);
    }

    private static void CheckShape(int length, int rows, int cols)
    {
        if (rows <= 0 || cols <= 0 || (long)rows * cols != length)
            throw new ArgumentException($"a [{rows}, {cols}] tensor needs {(long)rows * cols} values, got {length}");
    }

    private static float CheckFinite(float absMax, int index) =>
        float.IsFinite(absMax)
            ? absMax
            : throw new OnnxQuantException(null, index < 0
                ? "the tensor has a NaN or infinite value; it cannot be quantized"
                : $"channel {index} has a NaN or infinite value; it cannot be quantized", ExitCode.Unsupported);
}
