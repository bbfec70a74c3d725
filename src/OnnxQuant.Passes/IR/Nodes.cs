using Google.Protobuf;
using Onnx;

namespace OnnxQuant.IR;

/// <summary>Small helpers to build and read <see cref="NodeProto"/>s and their attributes.</summary>
public static class Nodes
{
    public const string MicrosoftDomain = "com.microsoft";

    public static NodeProto Create(string opType, IEnumerable<string> inputs, IEnumerable<string> outputs, string name = "", string domain = "")
    {
        var node = new NodeProto { OpType = opType, Name = name, Domain = domain };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        return node;
    }

    public static NodeProto With(this NodeProto node, string name, long value)
    {
        node.Attribute.Add(new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value });
        return node;
    }

    public static NodeProto With(this NodeProto node, string name, float value)
    {
        node.Attribute.Add(new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value });
        return node;
    }

    public static NodeProto With(this NodeProto node, string name, string value)
    {
        node.Attribute.Add(new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) });
        return node;
    }

    public static NodeProto With(this NodeProto node, string name, IEnumerable<long> values)
    {
        var attr = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attr.Ints.AddRange(values);
        node.Attribute.Add(attr);
        return node;
    }

    public static NodeProto With(this NodeProto node, string name, TensorProto value)
    {
        node.Attribute.Add(new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Tensor, T = value });
        return node;
    }

    public static long GetInt(this NodeProto node, string name, long fallback) =>
        node.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.I : fallback;

    public static float GetFloat(this NodeProto node, string name, float fallback) =>
        node.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.F : fallback;

    public static IReadOnlyList<long>? GetInts(this NodeProto node, string name) =>
        node.Attribute.FirstOrDefault(a => a.Name == name)?.Ints;

    /// <summary>True when the node is <paramref name="opType"/> in the default ONNX domain.</summary>
    public static bool IsOnnx(this NodeProto node, string opType) =>
        node.OpType == opType && node.Domain is "" or "ai.onnx";

    public static bool IsMicrosoft(this NodeProto node, string opType) =>
        node.OpType == opType && node.Domain == MicrosoftDomain;

    /// <summary>Input <paramref name="index"/>, or null when absent or empty (an omitted optional input).</summary>
    public static string? InputAt(this NodeProto node, int index) =>
        index < node.Input.Count && node.Input[index].Length > 0 ? node.Input[index] : null;

    public static string Describe(this NodeProto node) =>
        $"'{node.Name}' ({(node.Domain is "" or "ai.onnx" ? "" : node.Domain + ".")}{node.OpType})";
}
