using Onnx;
using OnnxQuant.IR;

namespace OnnxQuant.IO;

/// <summary>
/// The model file's <see cref="TensorProtoReader"/>: also reads external data (checked: relative location inside the
/// model's folder, range inside the file), mapped lazily.
/// </summary>
internal sealed class ModelTensorReader : TensorProtoReader
{
    private readonly ExternalDataFiles _files;

    public ModelTensorReader(ExternalDataFiles files) : base(files.ModelPath) => _files = files;

    protected override Tensor ReadExternal(TensorProto proto, TensorProto.Types.DataType type, long[] shape, long expected)
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
}
