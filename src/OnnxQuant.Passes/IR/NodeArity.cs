using Onnx;

namespace OnnxQuant.IR;

/// <summary>
/// The fewest inputs each operator the analyses match on takes, so that a crafted node (a Sqrt with no input) is refused
/// when the model is loaded rather than met by a pattern that reads its first input. ONNX Runtime refuses such a node
/// too; the counts are the schemas' required inputs (docs/security.md, "What is read").
/// </summary>
public static class NodeArity
{
    private static readonly Dictionary<string, int> MinInputs = new()
    {
        ["Cast"] = 1, ["Sqrt"] = 1, ["Reciprocal"] = 1, ["Identity"] = 1, ["Tanh"] = 1, ["Sigmoid"] = 1, ["Relu"] = 1,
        ["Neg"] = 1, ["Erf"] = 1, ["Softmax"] = 1, ["Shape"] = 1, ["Transpose"] = 1, ["Squeeze"] = 1, ["Unsqueeze"] = 1,
        ["ReduceMean"] = 1, ["ReduceMax"] = 1, ["DynamicQuantizeLinear"] = 1, ["Max"] = 1, ["Concat"] = 1,
        ["Add"] = 2, ["Sub"] = 2, ["Mul"] = 2, ["Div"] = 2, ["Pow"] = 2, ["MatMul"] = 2, ["Less"] = 2, ["LessOrEqual"] = 2,
        ["Greater"] = 2, ["Reshape"] = 2, ["Gather"] = 2, ["Expand"] = 2, ["Gemm"] = 2, ["Conv"] = 2, ["MatMulInteger"] = 2,
        ["QuantizeLinear"] = 2, ["DequantizeLinear"] = 2, ["LayerNormalization"] = 2, ["SimplifiedLayerNormalization"] = 2,
        ["Where"] = 3, ["MatMulNBits"] = 3, ["DynamicQuantizeMatMul"] = 3, ["SkipLayerNormalization"] = 3,
        ["SkipSimplifiedLayerNormalization"] = 3, ["MatMulIntegerToFloat"] = 4, ["QLinearMatMul"] = 8,
    };

    /// <summary>What is wrong with the node's inputs and outputs, or null.</summary>
    public static string? Problem(NodeProto node)
    {
        if (node.Output.Count == 0)
            return $"node '{node.Name}' ({node.OpType}) has no output";
        if (node.Domain is "" or "ai.onnx" or "com.microsoft" && MinInputs.TryGetValue(node.OpType, out int min) && node.Input.Count < min)
            return $"node '{node.Name}' ({node.OpType}) has {node.Input.Count} input{(node.Input.Count == 1 ? "" : "s")}; {node.OpType} takes at least {min}";
        return null;
    }
}
