using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.IR;

namespace OnnxQuant.Placement;

/// <summary>A node the provider runs, but not on its fast kernel; <paramref name="Detail"/> says why and what would reach it.</summary>
public sealed record SlowPath(string Node, string Op, string Detail);

/// <summary>
/// Nodes that have a kernel on the provider but miss its fast path, for the quantized ops whose dispatch
/// docs/architecture.md ("W4 forms per target", "W8A8 forms and execution providers") records: MatMulNBits below
/// accuracy_level 4 on the CPU, 4-bit blocks over 128 or float zero points on CUDA, int8 x int8 MatMulInteger on the CPU.
/// </summary>
public static class FastPaths
{
    public static string? Judge(NodeProto node, ExecutionProvider provider, ValueFacts facts)
    {
        if (node.Domain == "com.microsoft" && node.OpType == "MatMulNBits")
            return MatMulNBits(node, provider, facts);
        if (provider == ExecutionProvider.Cpu && node.Domain.Length == 0 && node.OpType == "MatMulInteger"
            && node.InputAt(0) is { Length: > 0 } a && facts.TypeOf(a) == TensorProto.Types.DataType.Int8)
            return "int8 activations: ONNX Runtime's CPU MatMulInteger is fast for uint8 x int8 only (smooth --target cpu emits uint8)";
        return null;
    }

    private static string? MatMulNBits(NodeProto node, ExecutionProvider provider, ValueFacts facts)
    {
        long bits = Int(node, "bits") ?? 4, block = Int(node, "block_size") ?? 0, level = Int(node, "accuracy_level") ?? 0;
        if (provider == ExecutionProvider.Cpu && level != 4)
            return $"accuracy_level {level}: MLAS's int8-compute kernels run only at 4 (awq --target cpu emits it)"
                + (bits == 8 ? "; an 8-bit weight is dequantized whole on every call below it" : "");
        if (provider != ExecutionProvider.Cuda)
            return null;
        if (bits == 4 && block > 128)
            return $"4-bit blocks of {block}: the CUDA EP's one-token kernel takes blocks of at most 128";
        if (node.InputAt(3) is { Length: > 0 } zeroPoints && facts.TypeOf(zeroPoints) is { } type && type != TensorProto.Types.DataType.Uint8)
            return $"{ElementType.Name(type)} zero points: the CUDA EP dequantizes the whole weight before a GEMM (packed uint8 ones reach its GEMV)";
        return null;
    }

    private static long? Int(NodeProto node, string name) => node.Attribute.FirstOrDefault(a => a.Name == name)?.I;
}
