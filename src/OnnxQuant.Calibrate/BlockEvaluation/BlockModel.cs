using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;
using OnnxQuant.Awq;
using OnnxQuant.IO;
using OnnxQuant.IR;

namespace OnnxQuant.Calibrate.BlockEvaluation;

/// <summary>
/// The ONNX model of one block alone: inputs are the group's activation, the block's side inputs and the consumers'
/// weights (in their storage layout and type); its one output is the block output. Plus OrtValue helpers.
/// </summary>
internal static class BlockModel
{
    public static byte[] Serialize(OnnxModel model, BlockSubgraph block, IReadOnlyList<string> recorded, IReadOnlyList<OrtValue> values)
    {
        var g = model.Graph;
        var graph = new GraphProto { Name = $"block of {block.Activation}" };
        graph.Node.AddRange(block.Nodes.Select(n => n.Clone()));
        for (int i = 0; i < recorded.Count; i++)
            graph.Input.Add(Info(recorded[i], values[i].GetTensorTypeAndShape()));
        foreach (var name in block.SideInputs.Where(g.IsGraphInput))
            graph.Input.Add(g.Inputs.First(v => v.Name == name));
        foreach (var consumer in block.Consumers)
        {
            var stored = g.GetConstant(consumer.WeightName)!;
            graph.Input.Add(Info(consumer.WeightName, (int)stored.DataType, stored.Shape));
        }
        foreach (var name in block.Constants)
            graph.Initializer.Add(TensorProtoWriter.Inline(g.GetConstant(name)!.Renamed(name)));
        graph.Output.Add(new ValueInfoProto { Name = block.Output });
        var proto = model.Header.Clone();
        proto.Graph = graph;
        return proto.ToByteArray();
    }

    /// <summary>A weight tensor as an input value (same bytes, same type).</summary>
    public static OrtValue FromTensor(IR.Tensor tensor)
    {
        var value = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, ElementType(tensor.DataType), tensor.Shape.ToArray());
        tensor.RawBytes.CopyTo(value.GetTensorMutableRawData());
        return value;
    }

    /// <summary>A copy owned by the default allocator, independent of the session that produced <paramref name="source"/>.</summary>
    public static OrtValue Copy(OrtValue source)
    {
        var info = source.GetTensorTypeAndShape();
        var copy = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, info.ElementDataType, info.Shape);
        source.GetTensorMutableRawData().CopyTo(copy.GetTensorMutableRawData());
        return copy;
    }

    /// <summary>The values of a float output as float32.</summary>
    public static float[] ToFloats(OrtValue value)
    {
        var info = value.GetTensorTypeAndShape();
        var raw = value.GetTensorMutableRawData();
        var result = new float[info.ElementCount];
        var type = info.ElementDataType switch
        {
            TensorElementType.Float => TensorProto.Types.DataType.Float,
            TensorElementType.Float16 => TensorProto.Types.DataType.Float16,
            TensorElementType.BFloat16 => TensorProto.Types.DataType.Bfloat16,
            var t => throw new NotSupportedException($"a block output of type {t} cannot be compared"),
        };
        FloatCodec.Decode(raw, type, result);
        return result;
    }

    private static TensorElementType ElementType(TensorProto.Types.DataType type) => type switch
    {
        TensorProto.Types.DataType.Float => TensorElementType.Float,
        TensorProto.Types.DataType.Float16 => TensorElementType.Float16,
        TensorProto.Types.DataType.Bfloat16 => TensorElementType.BFloat16,
        var t => throw new NotSupportedException($"a {t} weight cannot be fed to the block model"),
    };

    private static ValueInfoProto Info(string name, OrtTensorTypeAndShapeInfo info) =>
        Info(name, (int)info.ElementDataType, info.Shape);

    // ONNX's and ORT's element type numbers are the same (both follow TensorProto.DataType).
    public static ValueInfoProto Info(string name, int elementType, IEnumerable<long> dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = elementType, Shape = shape } } };
    }
}
