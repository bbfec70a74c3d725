using Google.Protobuf;
using Onnx;
using OnnxQuant.IR;

namespace OnnxQuant.IO;

/// <summary>Turns a <see cref="Tensor"/> back into a <see cref="TensorProto"/>, inline (raw_data) or as an external reference.</summary>
public static class TensorProtoWriter
{
    public static TensorProto Inline(Tensor tensor)
    {
        if (tensor.StringProto is not null)
        {
            var copy = tensor.StringProto.Clone();
            copy.Name = tensor.Name;
            return copy;
        }
        var proto = Header(tensor);
        proto.RawData = ByteString.CopyFrom(tensor.RawBytes);
        return proto;
    }

    public static TensorProto External(Tensor tensor, string location, long offset)
    {
        var proto = Header(tensor);
        proto.DataLocation = TensorProto.Types.DataLocation.External;
        proto.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        proto.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        proto.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = tensor.ByteLength.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        return proto;
    }

    private static TensorProto Header(Tensor tensor)
    {
        var proto = new TensorProto { Name = tensor.Name, DataType = (int)tensor.DataType };
        proto.Dims.AddRange(tensor.Shape);
        return proto;
    }
}
