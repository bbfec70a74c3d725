using Google.Protobuf;
using Onnx;

namespace OnnxQuant.IO;

/// <summary>
/// Builds a <see cref="ModelProto"/> of an in-memory model for handing to an inference session without copying the
/// weights: tensors still mapped from the model's external data files stay external references (relative to
/// <see cref="ExternalDataFolder"/>), everything else is written inline.
/// </summary>
public static class SessionProto
{
    /// <param name="model">The model as it is now (edits included).</param>
    /// <param name="externalDataFolder">The folder the returned references are relative to, or null when everything is inline.</param>
    public static ModelProto Build(OnnxModel model, out string? externalDataFolder)
    {
        externalDataFolder = model.SourcePath is null ? null : Path.GetDirectoryName(Path.GetFullPath(model.SourcePath));
        var graph = new GraphProto { Name = model.Graph.Name, DocString = model.Graph.DocString };
        graph.Node.AddRange(model.Graph.Nodes);
        graph.Input.AddRange(model.Graph.Inputs);
        graph.Output.AddRange(model.Graph.Outputs);
        graph.ValueInfo.AddRange(model.Graph.ValueInfo);
        bool anyExternal = false;
        foreach (var tensor in model.Graph.Initializers.Values)
        {
            if (externalDataFolder is not null && tensor.MappedLocation is { } at)
            {
                string location = Path.GetRelativePath(externalDataFolder, at.File.Path).Replace('\\', '/');
                graph.Initializer.Add(TensorProtoWriter.External(tensor, location, at.Offset));
                anyExternal = true;
            }
            else
            {
                graph.Initializer.Add(TensorProtoWriter.Inline(tensor));
            }
        }
        if (!anyExternal)
            externalDataFolder = null;
        var proto = model.Header.Clone();
        proto.Graph = graph;
        return proto;
    }

    /// <summary>
    /// The bytes of <paramref name="header"/> with <paramref name="graph"/> in place of its graph: the graph is swapped in
    /// only for serialisation, so the header (opsets, functions) is shared and never copied.
    /// </summary>
    public static byte[] WithGraph(ModelProto header, GraphProto graph)
    {
        var saved = header.Graph;
        try
        {
            header.Graph = graph;
            return header.ToByteArray();
        }
        finally
        {
            header.Graph = saved;
        }
    }
}
