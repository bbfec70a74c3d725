namespace OnnxQuant.Placement;

/// <summary>The ONNX Runtime execution providers whose kernel registrations <see cref="KernelTable"/> holds.</summary>
public enum ExecutionProvider
{
    Cpu,
    Cuda,
    TensorRt,
    Dml,
}

/// <summary>Why a node would leave the provider it was meant for.</summary>
public enum PlacementProblem
{
    /// <summary>The provider registers no kernel for the op at all.</summary>
    NoKernel,
    /// <summary>Kernels exist, but none for the model's opset of the op's domain.</summary>
    OpsetNotRegistered,
    /// <summary>Kernels exist at this opset, but none for the element type of one of the node's inputs.</summary>
    TypeNotRegistered,
}

public static class ExecutionProviders
{
    /// <summary>"CUDA EP", "TensorRT EP": how people name them.</summary>
    public static string Describe(ExecutionProvider provider) => provider switch
    {
        ExecutionProvider.Cpu => "CPU EP",
        ExecutionProvider.Cuda => "CUDA EP",
        ExecutionProvider.TensorRt => "TensorRT EP",
        ExecutionProvider.Dml => "DirectML EP",
        _ => throw new ArgumentOutOfRangeException(nameof(provider)),
    };

    /// <summary>The key of the provider in the kernel table ("cpu", "cuda", "tensorrt", "dml").</summary>
    public static string Key(ExecutionProvider provider) => provider.ToString().ToLowerInvariant();
}
