namespace OnnxQuant.Passes.W8A8;

/// <summary>The graph form of a W8A8 linear (see <see cref="W8A8RewritePass"/>).</summary>
public enum W8A8Format
{
    /// <summary>QuantizeLinear (static per-tensor) -> MatMulInteger (s8 x s8) -> Cast -> Mul: runs int8 on the CUDA EP and on the CPU.</summary>
    Int8,
    /// <summary>Per-token scales computed at run time (Abs, ReduceMax, Div, Round, Clip, Cast) -> MatMulInteger -> Cast -> Mul.</summary>
    Dynamic,
    /// <summary>QLinearMatMul with an int8 output and a DequantizeLinear (ORT's CPU kernel).</summary>
    QLinear,
    /// <summary>QuantizeLinear/DequantizeLinear pairs around a float MatMul, for the TensorRT EP.</summary>
    Qdq,
}

/// <summary>Settings shared by the alpha search and the rewrite.</summary>
public sealed record W8A8Options
{
    public W8A8Format Format { get; init; } = W8A8Format.Int8;

    /// <summary>7-bit weights (±63): exact on CPUs whose u8 x s8 kernel would saturate 16-bit pair sums (docs/architecture.md, "ONNX Runtime on the CPU").</summary>
    public bool ReducedRangeWeights { get; init; }

    /// <summary>
    /// Int8 and QLinear: most channels per activation computed in floating point beside the int8 product (Gather + a thin MatMul
    /// + Add), used where the alpha search finds that smoothing alone leaves at least twice their error. 0 turns it off.
    /// </summary>
    public int MaxFloatChannels { get; init; } = 4;

    /// <summary>
    /// Int8 and QLinear: LLM.int8()'s outlier rule (--float-outliers): every activation channel whose calibrated max |x|
    /// exceeds this is computed in floating point, replacing the "up to <see cref="MaxFloatChannels"/> where it halves
    /// the error" search. Null: off.
    /// </summary>
    public float? FloatOutlierThreshold { get; init; }

    /// <summary>
    /// uint8 activations with zero point 128 (the same codes, shifted) for ONNX Runtime's fast CPU u8 x s8 kernels:
    /// measured here, MatMulInteger s8 x s8 runs about 8x slower than fp32 on the CPU, u8 x s8 about 1.7x faster. The
    /// CUDA EP runs MatMulInteger for int8 activations only, so such a graph falls back to the CPU there. Not for qdq.
    /// </summary>
    public bool UnsignedActivations { get; init; }

    /// <summary>
    /// Int8/QLinear: fold an inserted smoothing Mul(1/s) into a per-axis QuantizeLinear (scale a * s_j) instead of keeping
    /// the Mul. Off by default: on ONNX Runtime's CPU a per-axis QuantizeLinear of a [512, 384] activation took ~24 ms
    /// against ~2 ms for the whole per-tensor quantize + MatMulInteger (measured here).
    /// </summary>
    public bool AbsorbSmoothingMul { get; init; }

    /// <summary>QLinear only: the calibrated output max is estimated on the sample rows and widened by this factor.</summary>
    public float OutputRangeMargin { get; init; } = 1.25f;

    public Smoothing.FakeQuantScheme FakeQuant => new()
    {
        PerTokenActivations = Format == W8A8Format.Dynamic,
        ReducedRangeWeights = ReducedRangeWeights,
        MaxFloatChannels = Format is W8A8Format.Int8 or W8A8Format.QLinear ? MaxFloatChannels : 0,
        OutlierThreshold = Format is W8A8Format.Int8 or W8A8Format.QLinear ? FloatOutlierThreshold : null,
    };
}
