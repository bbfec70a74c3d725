using Google.Protobuf;
using Onnx;

namespace OnnxQuant.IR;

/// <summary>Facts about ONNX tensor element types.</summary>
public static class ElementType
{
    /// <summary>Bytes per element, or 0 for types that are not fixed-size (string) or are packed (int4).</summary>
    public static int SizeOf(TensorProto.Types.DataType type) => type switch
    {
        TensorProto.Types.DataType.Float => 4,
        TensorProto.Types.DataType.Uint8 => 1,
        TensorProto.Types.DataType.Int8 => 1,
        TensorProto.Types.DataType.Uint16 => 2,
        TensorProto.Types.DataType.Int16 => 2,
        TensorProto.Types.DataType.Int32 => 4,
        TensorProto.Types.DataType.Int64 => 8,
        TensorProto.Types.DataType.Bool => 1,
        TensorProto.Types.DataType.Float16 => 2,
        TensorProto.Types.DataType.Double => 8,
        TensorProto.Types.DataType.Uint32 => 4,
        TensorProto.Types.DataType.Uint64 => 8,
        TensorProto.Types.DataType.Bfloat16 => 2,
        _ => 0,
    };

    public static bool IsFloat(TensorProto.Types.DataType type) =>
        type is TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Float16
            or TensorProto.Types.DataType.Bfloat16 or TensorProto.Types.DataType.Double;

    public static string Name(TensorProto.Types.DataType type) => type switch
    {
        TensorProto.Types.DataType.Float => "float32",
        TensorProto.Types.DataType.Float16 => "float16",
        TensorProto.Types.DataType.Bfloat16 => "bfloat16",
        TensorProto.Types.DataType.Double => "float64",
        _ => type.ToString().ToLowerInvariant(),
    };

    public static string Name(int type) => Name((TensorProto.Types.DataType)type);
}
