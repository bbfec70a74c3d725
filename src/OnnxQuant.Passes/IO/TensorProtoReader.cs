using System.Runtime.InteropServices;
using Onnx;
using OnnxQuant.IR;

namespace OnnxQuant.IO;

/// <summary>
/// Turns a <see cref="TensorProto"/> into a <see cref="Tensor"/>: raw_data, the typed fields, or external data
/// (checked: relative location inside the model's folder, range inside the file) mapped lazily.
/// </summary>
internal sealed class TensorProtoReader
{
    private readonly ExternalDataFiles _files;

    public TensorProtoReader(ExternalDataFiles files) => _files = files;

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
            throw new OnnxQuantException(_files.ModelPath, $"tensor '{proto.Name}' has element type {type}, which OnnxQuant cannot read", ExitCode.Unsupported);
        long count = ShapeMath.Count(shape);
        long expected = count * size;

        if (proto.DataLocation == TensorProto.Types.DataLocation.External)
            return ReadExternal(proto, type, shape, expected);
        if (proto.Segment is not null)
            throw new OnnxQuantException(_files.ModelPath, $"tensor '{proto.Name}' is segmented, which OnnxQuant does not support", ExitCode.Unsupported);

        byte[] bytes = proto.RawData.Length > 0 || count == 0 ? proto.RawData.ToByteArray() : FromTypedFields(proto, type, count);
        if (bytes.Length != expected)
            throw Bad($"tensor '{proto.Name}' holds {bytes.Length} bytes but its shape [{string.Join(",", shape)}] of {ElementType.Name(type)} needs {expected}");
        return Tensor.FromBytes(proto.Name, type, shape, bytes);
    }

    private Tensor ReadExternal(TensorProto proto, TensorProto.Types.DataType type, long[] shape, long expected)
    {
        string? location = null;
        long offset = 0, length = -1;
        foreach (var entry in proto.ExternalData)
        {
            switch (entry.Key)
            {
                case "location": location = entry.Value; break;
                case "offset":
                    if (!long.TryParse(entry.Value, out offset) || offset < 0)
                        throw Bad($"tensor '{proto.Name}' has an invalid external data offset '{entry.Value}'");
                    break;
                case "length":
                    if (!long.TryParse(entry.Value, out length) || length < 0)
                        throw Bad($"tensor '{proto.Name}' has an invalid external data length '{entry.Value}'");
                    break;
            }
        }
        if (string.IsNullOrEmpty(location))
            throw Bad($"tensor '{proto.Name}' is stored externally but names no location");
        if (length < 0)
            length = expected;
        if (length != expected)
            throw Bad($"tensor '{proto.Name}' has external length {length} but its shape [{string.Join(",", shape)}] of {ElementType.Name(type)} needs {expected} bytes");
        var file = _files.Open(location, proto.Name);
        if (offset + length > file.Length)
            throw new OnnxQuantException(file.Path, $"is too short: tensor '{proto.Name}' needs bytes [{offset}, {offset + length}) but the file has {file.Length} (truncated external data?)");
        return Tensor.FromMapped(proto.Name, type, shape, file, offset, length);
    }

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

    private OnnxQuantException Bad(string problem) => new(_files.ModelPath, problem);
}
