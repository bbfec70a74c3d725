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
}
