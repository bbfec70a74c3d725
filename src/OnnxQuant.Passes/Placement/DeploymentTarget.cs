using OnnxQuant.Passes.W8A8;

namespace OnnxQuant.Placement;

/// <summary>Where the quantized model will run: picks the W8A8 graph form and the provider emitted nodes are checked against.</summary>
public enum DeploymentTarget
{
    /// <summary>ONNX Runtime's CPU EP: MatMulInteger with uint8 activations (its fast u8 x s8 kernels).</summary>
    Cpu,
    /// <summary>The CUDA EP: symmetric int8 end to end (QuantizeLinear s8 -> MatMulInteger s8 x s8), the only MatMulInteger it registers.</summary>
    Cuda,
    /// <summary>The TensorRT EP: QuantizeLinear/DequantizeLinear pairs around float MatMuls, which TensorRT fuses into int8 GEMMs.</summary>
    TensorRt,
}

public static class DeploymentTargets
{
    public static ExecutionProvider Provider(DeploymentTarget target) => target switch
    {
        DeploymentTarget.Cpu => ExecutionProvider.Cpu,
        DeploymentTarget.Cuda => ExecutionProvider.Cuda,
        DeploymentTarget.TensorRt => ExecutionProvider.TensorRt,
        _ => throw new ArgumentOutOfRangeException(nameof(target)),
    };

    /// <summary>The W8A8 graph form the target runs natively (docs/architecture.md, "Execution-provider placement").</summary>
    public static W8A8Format Format(DeploymentTarget target) => target == DeploymentTarget.TensorRt ? W8A8Format.Qdq : W8A8Format.Int8;

    /// <summary>uint8 activations only for the CPU: the CUDA EP's MatMulInteger and TensorRT's int8 are signed.</summary>
    public static bool UnsignedActivations(DeploymentTarget target) => target == DeploymentTarget.Cpu;

    /// <summary>
    /// MatMulNBits accuracy_level: 4 (int8 compute, MLAS's fast CompInt8 kernels) for the CPU, which run only at that
    /// level; 0 elsewhere (the CUDA kernel ignores it) and without a target (the float compute, where accuracy is read off).
    /// </summary>
    public static int W4AccuracyLevel(DeploymentTarget? target) => target == DeploymentTarget.Cpu ? 4 : 0;

    /// <summary>
    /// Symmetric 4-bit blocks (no zero points) for the CPU: MLAS's one-row CompInt8 kernel for AVX2 without AVX-512 reads
    /// zero points wrongly (docs/architecture.md, "W4 forms per target"), and symmetric blocks are what the GenAI builder
    /// emits there. Asymmetric elsewhere (more accurate; the CUDA GEMV reads packed zero points).
    /// </summary>
    public static bool W4Symmetric(DeploymentTarget? target) => target == DeploymentTarget.Cpu;

    /// <summary>Why the target cannot run 4-bit blocks of <paramref name="blockSize"/>, or null when it can.</summary>
    public static string? W4BlockProblem(DeploymentTarget? target, int blockSize) =>
        target == DeploymentTarget.Cuda && blockSize > 128
            ? $"the CUDA EP's one-token MatMulNBits kernel takes 4-bit blocks of at most 128 (got {blockSize})"
            : null;
}
