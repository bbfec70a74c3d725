using System.Runtime.InteropServices;
using Onnx;

namespace OnnxQuant.IR;

/// <summary>
/// Turns a <see cref="TensorProto"/> into a <see cref="Tensor"/>: raw_data or the typed fields. External data belongs to a
/// model file, so this reader refuses it; the model file reader (IO) derives from it and maps external data lazily.
/// </summary>
internal class TensorProtoReader
{
    /// <param name="source">The model file the tensors come from, named in errors.</param>
    public TensorProtoReader(string? source) => Source = source;

    protected string? Source { get; }

    public Tensor Read(TensorProto proto)
    {
        var type = (TensorProto.Types.DataType)proto.DataType;
        var shape = proto.Dims.ToArray();
        foreach (var d in shape)
            if (d < 0)
                throw Bad($"tensor '{proto.Name}' has a negative dimension [{string.Join(",", shape)}]");
        if (type == TensorProto.Types.DataType.String)
            return Tensor.FromStringProto(proto);
        int size = ElementType.SizeOf(type);
        if (size == 0)
            throw new OnnxQuantException(Source, $"tensor '{proto.Name}' has element type {type}, which OnnxQuant cannot read", ExitCode.Unsupported);
        long count = ShapeMath.Count(shape);
        long expected = count * size;

        if (proto.DataLocation == TensorProto.Types.DataLocation.External)
            return ReadExternal(proto, type, shape, expected);
        if (proto.Segment is not null)
            throw new OnnxQuantException(Source, $"tensor '{proto.Name}' is segmented, which OnnxQuant does not support", ExitCode.Unsupported);

        byte[] bytes = proto.RawData.Length > 0 || count == 0 ? proto.RawData.ToByteArray() : FromTypedFields(proto, type, count);
        if (bytes.Length != expected)
            throw Bad($"tensor '{proto.Name}' holds {bytes.Length} bytes but its shape [{string.Join(",", shape)}] of {ElementType.Name(type)} needs {expected}");
        return Tensor.FromBytes(proto.Name, type, shape, bytes);
    }

    /// <summary>A tensor stored in an external data file; only a reader that knows the model's files can resolve it.</summary>
    protected virtual Tensor ReadExternal(TensorProto proto, TensorProto.Types.DataType type, long[] shape, long expected) =>
        throw Bad($"tensor '{proto.Name}' is stored in external data, which only a model file's reader can resolve");

    private static byte[] FromTypedFields(TensorProto proto, TensorProto.Types.DataType type, long count)
    {
        switch (type)
        {
            case TensorProto.Types.DataType.Float:
                return MemoryMarshal.AsBytes(proto.FloatData.ToArray().AsSpan()).ToArray();
            case TensorProto.Types.DataType.Double:
                return MemoryMarshal.AsBytes(proto.DoubleData.ToArray().AsSpan()).ToArray();
            case TensorProto.Types.DataType.Int64:
                return MemoryMarshal.AsBytes(proto.Int64Data.ToArray().AsSpan()).ToArray();
            case TensorProto.Types.DataType.Uint64:
                return MemoryMarshal.AsBytes(proto.Uint64Data.ToArray().AsSpan()).ToArray();
            case TensorProto.Types.DataType.Uint32:
            {
                var v = proto.Uint64Data.Select(x => (uint)x).ToArray();
                return MemoryMarshal.AsBytes(v.AsSpan()).ToArray();
            }
            case TensorProto.Types.DataType.Int32:
                return MemoryMarshal.AsBytes(proto.Int32Data.ToArray().AsSpan()).ToArray();
            case TensorProto.Types.DataType.Float16 or TensorProto.Types.DataType.Bfloat16
                or TensorProto.Types.DataType.Uint16 or TensorProto.Types.DataType.Int16:
            {
                // 16-bit types keep their bit pattern in the low half of each int32_data entry.
                var v = proto.Int32Data.Select(x => (ushort)x).ToArray();
                return MemoryMarshal.AsBytes(v.AsSpan()).ToArray();
            }
            case TensorProto.Types.DataType.Int8 or TensorProto.Types.DataType.Uint8 or TensorProto.Types.DataType.Bool:
                return proto.Int32Data.Select(x => (byte)x).ToArray();
            default:
                return Array.Empty<byte>();
        }
    }

    protected OnnxQuantException Bad(string problem) => new(Source, problem);
}
