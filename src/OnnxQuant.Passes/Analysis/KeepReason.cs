namespace OnnxQuant.Analysis;

/// <summary>Why a MatMul or Gemm stays in floating point; <see cref="None"/> when it is quantized.</summary>
public enum KeepReason
{
    None,
    /// <summary>Its weight is computed by the graph (attention's q·kᵀ and scores·v): there is nothing constant to quantize.</summary>
    ComputedWeight,
    /// <summary>Both operands are constants: the product is a constant too.</summary>
    ConstantActivation,
    /// <summary>Gemm with transA = 1: the activation would be read transposed.</summary>
    TransposedActivation,
    /// <summary>Gemm whose C is not a constant vector of N values (a per-row addend is not a bias).</summary>
    NonVectorBias,
    /// <summary>Gemm alpha of 0 or not finite.</summary>
    InvalidAlpha,
    /// <summary>The weight is a constant but not a matrix (rank other than 2 after its shape steps).</summary>
    WeightNotMatrix,
    /// <summary>The weight is stored in a type other than fp32, fp16 or bf16.</summary>
    UnsupportedDtype,
    /// <summary>The weight is DequantizeLinear of an integer constant: the linear is already quantized.</summary>
    AlreadyQuantized,
    /// <summary>The node's name matches an --exclude pattern.</summary>
    ExcludedByPattern,
    /// <summary>The LM head, kept by default (logits are the most sensitive output).</summary>
    LmHead,
    /// <summary>The LM head, included but quantized by the embeddings and head pass at its own bits (--lm-head-bits), not with the other linears.</summary>
    LmHeadOwnBits,
    /// <summary>Inside an If/Loop/Scan body, reading a value the body computes: calibration cannot record it.</summary>
    SubgraphNotCalibrated,
    /// <summary>Its activation has no calibration statistics (a static activation scale needs them).</summary>
    NoStatistics,
    /// <summary>Mixed precision kept it in float: its measured error saved the most per byte within the size budget.</summary>
    BitsBudget,
}

public static class KeepReasons
{
    /// <summary>A short phrase for tables: "computed weight", "LM head (--include-lm-head to quantize it)".</summary>
    public static string Describe(KeepReason reason) => reason switch
    {
        KeepReason.None => "quantized",
        KeepReason.ComputedWeight => "computed weight",
        KeepReason.ConstantActivation => "constant activation",
        KeepReason.TransposedActivation => "Gemm transA",
        KeepReason.NonVectorBias => "bias is not a vector",
        KeepReason.InvalidAlpha => "Gemm alpha 0 or not finite",
        KeepReason.WeightNotMatrix => "weight is not a matrix",
        KeepReason.UnsupportedDtype => "unsupported weight type",
        KeepReason.AlreadyQuantized => "already quantized",
        KeepReason.ExcludedByPattern => "excluded",
        KeepReason.LmHead => "LM head (--include-lm-head to quantize it)",
        KeepReason.LmHeadOwnBits => "LM head, quantized on its own (--lm-head-bits)",
        KeepReason.SubgraphNotCalibrated => "inside a subgraph, input not calibrated",
        KeepReason.NoStatistics => "no calibration statistics",
        KeepReason.BitsBudget => "float by the bits budget",
        _ => reason.ToString(),
    };

    /// <summary>A word or two for narrow table cells: "LM head", "computed weight".</summary>
    public static string Short(KeepReason reason) => IsLmHead(reason) ? "LM head" : Describe(reason);

    /// <summary>Either LM head reason: kept by default, or left to the embeddings and head pass.</summary>
    public static bool IsLmHead(KeepReason reason) => reason is KeepReason.LmHead or KeepReason.LmHeadOwnBits;

    /// <summary>True for reasons that are a property of the graph: no option changes them.</summary>
    public static bool IsStructural(KeepReason reason) => reason is not (KeepReason.None or KeepReason.ExcludedByPattern or KeepReason.LmHead or KeepReason.LmHeadOwnBits);
}
