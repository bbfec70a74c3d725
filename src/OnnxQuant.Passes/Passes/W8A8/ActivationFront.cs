using System.Numerics.Tensors;
using Onnx;
using OnnxQuant.IR;
using OnnxQuant.Quantization;
using OnnxQuant.Smoothing;
using DataType = Onnx.TensorProto.Types.DataType;

namespace OnnxQuant.Passes.W8A8;

/// <summary>An activation as the quantized linears read it.</summary>
/// <param name="Value">The int8 tensor (Int8, Dynamic, QLinear), or the dequantized float tensor (Qdq).</param>
/// <param name="StaticScale">The per-tensor scale the int8 values are in (null for per-token).</param>
/// <param name="TokenScale">Dynamic only: the fp32 per-token scales, shaped [..., 1].</param>
/// <param name="AbsorbedMul">The smoothing Mul folded into the quantizer, if any.</param>
internal sealed record QuantizedActivation(string Value, float? StaticScale, string? TokenScale, NodeProto? AbsorbedMul)
{
    /// <summary>With uint8 activations: the scalar zero point (128) MatMulInteger / QLinearMatMul must take; null for int8 (0).</summary>
    public string? ZeroPoint { get; init; }

    /// <summary>The activation's float channels, gathered in fp32, when the linears compute some channels exactly.</summary>
    public FloatChannelInput? Float { get; init; }
}

/// <summary>
/// Channels kept out of the int8 product: <paramref name="Value"/> holds them ([..., count], fp32), gathered from the
/// unsmoothed input when the smoothing Mul was absorbed; the weight rows they meet must then be multiplied by
/// <paramref name="RowScale"/> (that Mul's 1/s), else by 1.
/// </summary>
internal sealed record FloatChannelInput(string Value, IReadOnlyList<int> Channels, float[] RowScale);

/// <summary>
/// Emits the quantizing front of an activation once, shared by all its linears: QuantizeLinear with the static scale
/// (Int8, QLinear), the run-time per-token chain (Dynamic) or a QuantizeLinear/DequantizeLinear pair (Qdq). On request a
/// smoothing Mul(1/s) right before is absorbed into a per-axis QuantizeLinear scale <c>a * s_j</c> (one node less; but
/// ORT's CPU per-axis QuantizeLinear measured ~10x slower than the Mul plus a per-tensor one, so it is off by default).
/// </summary>
internal static class ActivationFront
{
    // fp16 scales stay well inside fp16's normal range, or the quantizer runs in fp32.
    private const float Fp16ScaleMin = 1e-4f, Fp16ScaleMax = 6e4f;

    public static QuantizedActivation Emit(GraphEmitter e, string activation, DataType type, W8A8Format format, float? absMax,
        IReadOnlyList<int> floatChannels, bool unsigned = false, bool absorbSmoothing = false)
    {
        unsigned &= format != W8A8Format.Qdq; // TensorRT wants symmetric int8 Q/DQ
        string? zeroPoint = unsigned ? e.UInt8s($"{activation}/w8a8_a_zero_point", [UnsignedZeroPoint], []) : null;
        if (floatChannels.Count > 0 && format is not (W8A8Format.Int8 or W8A8Format.QLinear))
            throw new InvalidOperationException($"float channels of '{activation}' are only emitted for the int8 and qlinear formats");
        if (format == W8A8Format.Dynamic)
            return PerToken(e, activation, type, unsigned) with { ZeroPoint = zeroPoint };
        if (absMax is not { } max)
            throw new InvalidOperationException($"static quantization of '{activation}' needs its calibrated range");
        float a = Int8Quantizer.QuantizeActivationScale(max);
        string hint = Hint(activation);

        if (format == W8A8Format.Qdq)
        {
            var (qIn, qType) = QuantizerInput(e, activation, type, [a], hint);
            string q = QuantizeLinear(e, qIn, [a], qType, hint, false);
            string scale = e.Scalar($"{hint}_dq_scale", a, qType);
            string dq = e.Node("DequantizeLinear", $"{hint}/DequantizeLinear", $"{hint}_dq", [q, scale, e.Int8s($"{hint}_zp", [0], [])]);
            return new QuantizedActivation(qType == type ? dq : e.Cast(dq, type, $"{hint}_dq"), a, null, null);
        }

        // Int8 / QLinear: absorb a smoothing Mul into a per-axis scale when asked and the opset has per-axis QuantizeLinear.
        if (absorbSmoothing && e.Opset >= 13 && SmoothingMul(e.Graph, activation) is { } mul && e.Graph.GetConstant(mul.Input[1]) is { } inverse)
        {
            var perChannel = inverse.ToFloats();
            for (int j = 0; j < perChannel.Length; j++)
                perChannel[j] = a / perChannel[j];
            var (qIn, qType) = QuantizerInput(e, mul.Input[0], type, perChannel, hint);
            var inverseValues = inverse.ToFloats();
            return new QuantizedActivation(QuantizeLinear(e, qIn, perChannel, qType, hint, unsigned), a, null, mul)
            {
                ZeroPoint = zeroPoint,
                Float = Gather(e, mul.Input[0], type, floatChannels, floatChannels.Select(j => inverseValues[j]).ToArray(), hint),
            };
        }
        var (input, inputType) = QuantizerInput(e, activation, type, [a], hint);
        return new QuantizedActivation(QuantizeLinear(e, input, [a], inputType, hint, unsigned), a, null, null)
        {
            ZeroPoint = zeroPoint,
            Float = Gather(e, activation, type, floatChannels, floatChannels.Select(_ => 1f).ToArray(), hint),
        };
    }

    // Gather(x, channels, axis -1) in fp32: the exact side of a split linear (a handful of channels, so a small MatMul).
    private static FloatChannelInput? Gather(GraphEmitter e, string source, DataType type, IReadOnlyList<int> channels, float[] rowScale, string hint)
    {
        if (channels.Count == 0)
            return null;
        string indices = e.Int64s($"{hint}_float_channels", channels.Select(c => (long)c).ToArray(), [channels.Count]);
        string gathered = e.Node("Gather", $"{hint}/GatherFloatChannels", $"{hint}_float_channels_x", [source, indices], n => n.With("axis", -1L));
        if (type != DataType.Float)
            gathered = e.Cast(gathered, DataType.Float, $"{hint}_float_channels_fp32");
        return new FloatChannelInput(gathered, channels, rowScale);
    }

    /// <summary>The Mul(x, 1/s) that smoothing inserted to produce <paramref name="value"/>, or null.</summary>
    public static NodeProto? SmoothingMul(Graph graph, string value) =>
        graph.Producer(value) is { } p && p.IsOnnx("Mul") && p.DocString == InsertedMulFold.DocString && p.Input.Count == 2
        && graph.GetConstant(p.Input[1]) is { } c && c.ElementCount >= 2 ? p : null;

    // QuantizeLinear takes fp16/bf16 input only from opset 19, with a scale of the input's type: otherwise go through fp32.
    private static (string Input, DataType Type) QuantizerInput(GraphEmitter e, string value, DataType type, float[] scales, string hint)
    {
        if (type == DataType.Float)
            return (value, type);
        bool narrowOk = e.Opset >= 19 && TensorPrimitives.Min(scales) >= Fp16ScaleMin && TensorPrimitives.Max(scales) <= Fp16ScaleMax;
        return narrowOk ? (value, type) : (e.Cast(value, DataType.Float, $"{hint}_fp32"), DataType.Float);
    }

    // Symmetric int8 (zero point 0), or the same codes shifted into uint8 (zero point 128) for ORT's CPU u8 x s8 kernel.
    private static string QuantizeLinear(GraphEmitter e, string input, float[] scales, DataType scaleType, string hint, bool unsigned)
    {
        bool perAxis = scales.Length > 1;
        long[] shape = perAxis ? [scales.Length] : [];
        string scale = e.Floats($"{hint}_scale", scales, shape, scaleType);
        string zeroPoint = unsigned
            ? e.UInt8s($"{hint}_zero_point", Enumerable.Repeat(UnsignedZeroPoint, scales.Length).ToArray(), shape)
            : e.Int8s($"{hint}_zero_point", new sbyte[scales.Length], shape);
        return e.Node("QuantizeLinear", $"{hint}/QuantizeLinear", $"{hint}_int8", [input, scale, zeroPoint],
            perAxis ? n => n.With("axis", -1L) : null);
    }

    // scale = max(ReduceMax(|x|, last axis) / 127, tiny); q = Cast<int8>(Clip(Round(x / scale), -128, 127)), in fp32.
    /// <summary>The zero point of uint8 activations: int8 code c is stored as c + 128.</summary>
    public const byte UnsignedZeroPoint = 128;

    private static QuantizedActivation PerToken(GraphEmitter e, string activation, DataType type, bool unsigned)
    {
        string hint = Hint(activation);
        string x = type == DataType.Float ? activation : e.Cast(activation, DataType.Float, $"{hint}_fp32");
        string abs = e.Node("Abs", $"{hint}/Abs", $"{hint}_abs", [x]);
        string max = e.Opset >= 18
            ? e.Node("ReduceMax", $"{hint}/ReduceMax", $"{hint}_absmax", [abs, e.Int64s($"{hint}_axes", [-1], [1])], n => n.With("keepdims", 1L))
            : e.Node("ReduceMax", $"{hint}/ReduceMax", $"{hint}_absmax", [abs], n => n.With("axes", new long[] { -1 }).With("keepdims", 1L));
        string raw = e.Node("Div", $"{hint}/ScaleDiv", $"{hint}_raw_scale", [max, e.Scalar($"{hint}_qmax", Int8Quantizer.FullRangeMax)]);
        string scale = e.Node("Max", $"{hint}/ScaleFloor", $"{hint}_token_scale", [raw, e.Scalar($"{hint}_min_scale", ScaleStorage.MinScale)]);
        string scaled = e.Node("Div", $"{hint}/Div", $"{hint}_scaled", [x, scale]);
        string rounded = e.Node("Round", $"{hint}/Round", $"{hint}_rounded", [scaled]);
        string clipped = e.Node("Clip", $"{hint}/Clip", $"{hint}_clipped", [rounded, e.Scalar($"{hint}_qlow", -128f), e.Scalar($"{hint}_qhigh", 127f)]);
        if (unsigned)
            clipped = e.Node("Add", $"{hint}/ZeroPoint", $"{hint}_shifted", [clipped, e.Scalar($"{hint}_zero_point_f", UnsignedZeroPoint)]);
        string q = e.Cast(clipped, unsigned ? DataType.Uint8 : DataType.Int8, $"{hint}_int8");
        return new QuantizedActivation(q, null, scale, null);
    }

    private static string Hint(string activation) => $"{activation}/w8a8";
}
