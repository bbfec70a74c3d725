using Google.Protobuf;
using Onnx;
using OnnxQuant.IR;

namespace OnnxQuant.Tests.ModelIO;

/// <summary>Hand-built minimal models for I/O tests: Y = X · W (+ b), weights given as protos.</summary>
internal static class TinyModels
{
    public static ModelProto MatMul(TensorProto weight, int k, int n)
    {
        var graph = new GraphProto { Name = "tiny" };
        graph.Input.Add(FloatInput("X", 1, k));
        graph.Output.Add(FloatInput("Y", 1, n));
        graph.Node.Add(Nodes.Create("MatMul", new[] { "X", weight.Name }, new[] { "Y" }, "matmul"));
        graph.Initializer.Add(weight);
        var model = new ModelProto { IrVersion = 8, ProducerName = "onnxquant-tests", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        return model;
    }

    public static ValueInfoProto FloatInput(string name, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    public static TensorProto ExternalTensor(string name, string location, long offset, long length, params long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float, DataLocation = TensorProto.Types.DataLocation.External };
        t.Dims.AddRange(dims);
        t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString() });
        t.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = length.ToString() });
        return t;
    }

    public static void Write(ModelProto model, string path)
    {
        using var s = File.Create(path);
        model.WriteTo(s);
    }
}
