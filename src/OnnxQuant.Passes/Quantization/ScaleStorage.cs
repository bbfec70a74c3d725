using Onnx;
using OnnxQuant.IR;

namespace OnnxQuant.Quantization;

/// <summary>
/// The float types a quantization scale may be stored in, and the rounding that keeps the error bounds true after
/// storage: a scale is rounded to its storage type *away from zero*, so the quantization range it covers can only grow.
/// Codes are then computed with the stored value, so what a kernel dequantizes is exactly what was quantized against.
/// </summary>
public static class ScaleStorage
{
    /// <summary>Smallest scale magnitude used; an all-zero block or channel gets this instead of 0 (no division by 0).</summary>
    public const float MinScale = 1e-8f;

    public static bool IsSupported(TensorProto.Types.DataType type) =>
        type is TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Float16 or TensorProto.Types.DataType.Bfloat16;

    public static void CheckSupported(TensorProto.Types.DataType type)
    {
        if (!IsSupported(type))
            throw new ArgumentException($"scales can be stored as float32, float16 or bfloat16, not {type}");
    }

    /// <summary>
    /// <paramref name="scale"/> with its magnitude floored at <see cref="MinScale"/> and rounded up to a value
    /// representable in <paramref name="type"/>; the sign is kept. May return infinity (fp16 overflow): callers check.
    /// </summary>
    public static float Round(float scale, TensorProto.Types.DataType type)
    {
        float magnitude = MathF.Max(MathF.Abs(scale), MinScale);
        float stored = type switch
        {
            TensorProto.Types.DataType.Float16 => RoundUpHalf(magnitude),
            TensorProto.Types.DataType.Bfloat16 => RoundUpBFloat16(magnitude),
            _ => magnitude,
        };
        return MathF.CopySign(stored, scale);
    }

    private static float RoundUpHalf(float magnitude)
    {
        var h = (Half)magnitude;
        if ((float)h < magnitude)
            h = Half.BitIncrement(h);
        return (float)h;
    }

    private static float RoundUpBFloat16(float magnitude)
    {
        ushort bits = FloatCodec.ToBFloat16(magnitude);
        float value = FloatCodec.FromBFloat16(bits);
        return value < magnitude ? FloatCodec.FromBFloat16((ushort)(bits + 1)) : value;
    }
}
