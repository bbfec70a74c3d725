using Google.Protobuf;
using Onnx;
using OnnxQuant.IR;

namespace OnnxQuant.IO;

/// <summary>Where and how <see cref="ModelFile.Save"/> writes tensors.</summary>
public sealed record SaveOptions
{
    /// <summary>Tensors of at least this many bytes go to the external data file (ORT's default is 1 KiB).</summary>
    public long ExternalThreshold { get; init; } = 1024;

    /// <summary>Offsets in the data file are multiples of this, so a reader can map each tensor page-aligned.</summary>
    public int Alignment { get; init; } = 4096;
}

/// <summary>
/// Loads and saves ONNX models. Loading maps external data lazily; saving streams tensors into one aligned data file
/// beside the model and writes atomically (temporary files, then rename), so no reader ever sees a half-written model.
/// </summary>
public static class ModelFile
{
    /// <summary>Protobuf's hard limit: one message cannot exceed 2 GB.</summary>
    private const long MaxProtoBytes = int.MaxValue;

    public static OnnxModel Load(string path)
    {
        if (Directory.Exists(path))
            throw new OnnxQuantException(path, "is a folder, not an ONNX model file");
        if (!File.Exists(path))
            throw new OnnxQuantException(path, "does not exist");
        FileKinds.RequireRegular(path, "an ONNX model file");
        long size = new FileInfo(path).Length;
        if (size == 0)
            throw new OnnxQuantException(path, "is empty, not an ONNX model");
        if (size > MaxProtoBytes)
            throw new OnnxQuantException(path, $"is {size} bytes; a protobuf message over 2 GB cannot be parsed. Store the weights as external data (a model over 2 GB must use it)");
        ModelProto proto;
        try
        {
            using var stream = File.OpenRead(path);
            proto = ModelProto.Parser.ParseFrom(stream);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new OnnxQuantException(path, $"is not a valid ONNX model: the protobuf does not parse ({e.Message.TrimEnd('.')}). The file may be truncated or not a model at all", ExitCode.BadInput, e);
        }
        catch (IOException e)
        {
            throw new OnnxQuantException(path, $"cannot be read: {e.Message}", ExitCode.BadInput, e);
        }
        if (proto.Graph is null || proto.IrVersion <= 0)
            throw new OnnxQuantException(path, "is not an ONNX model: it has no graph or no ir_version (is it really a .onnx file?)");
        var files = new ExternalDataFiles(path);
        try
        {
            return FromProto(proto, path, files);
        }
        catch
        {
            files.Dispose();
            throw;
        }
    }

    internal static OnnxModel FromProto(ModelProto proto, string? path, ExternalDataFiles? files)
    {
        var reader = new ModelTensorReader(files ?? new ExternalDataFiles(path ?? "model.onnx"));
        var g = proto.Graph ?? throw new OnnxQuantException(path, "has no graph");
        if (g.SparseInitializer.Count > 0)
            throw new OnnxQuantException(path, "has sparse initializers, which OnnxQuant does not support", ExitCode.Unsupported);
        CheckNodes(g.Node, path);
        var initializers = g.Initializer.Select(reader.Read).ToList();
        foreach (var node in g.Node)
            InlineSubgraphTensors(node, reader);
        var graph = new Graph(g.Name, g.Node, g.Input, g.Output, initializers, g.ValueInfo, g.DocString);
        try
        {
            graph.TopologicalOrder();
        }
        catch (GraphValidationException e)
        {
            throw new OnnxQuantException(path, $"is not a valid ONNX graph: {e.Message}", ExitCode.BadInput, e);
        }
        var header = proto.Clone();
        header.Graph = null;
        return new OnnxModel(header, graph, path, files);
    }

    // Every node, in bodies too, has the inputs its operator requires: the analyses read them without asking.
    private static void CheckNodes(IEnumerable<NodeProto> nodes, string? path)
    {
        foreach (var node in nodes)
        {
            if (NodeArity.Problem(node) is { } problem)
                throw new OnnxQuantException(path, $"is not a valid ONNX graph: {problem}");
            foreach (var body in SubgraphScope.Subgraphs(node))
                CheckNodes(body.Node, path);
        }
    }

    // Subgraph initializers are few and small; inlining them means the save path only handles the top-level graph.
    private static void InlineSubgraphTensors(NodeProto node, TensorProtoReader reader)
    {
        foreach (var sub in SubgraphScope.Subgraphs(node))
        {
            for (int i = 0; i < sub.Initializer.Count; i++)
                if (sub.Initializer[i].DataLocation == TensorProto.Types.DataLocation.External)
                    sub.Initializer[i] = TensorProtoWriter.Inline(reader.Read(sub.Initializer[i]));
            foreach (var inner in sub.Node)
                InlineSubgraphTensors(inner, reader);
        }
        foreach (var attr in node.Attribute)
            if (attr.T is { DataLocation: TensorProto.Types.DataLocation.External })
                attr.T = TensorProtoWriter.Inline(reader.Read(attr.T));
    }

    /// <summary>
    /// Writes <paramref name="model"/> to <paramref name="path"/>, large tensors to <c>&lt;file name&gt;.data</c> beside it.
    /// Never writes over the model's own source files.
    /// </summary>
    public static void Save(OnnxModel model, string path, SaveOptions? options = null, CancellationToken cancel = default)
    {
        options ??= new SaveOptions();
        string full = Path.GetFullPath(path);
        string dataName = Path.GetFileName(full) + ".data";
        string dataPath = Path.Combine(Path.GetDirectoryName(full)!, dataName);
        CheckOutputPath(model, full, dataPath);
        StaleTemporaries.Remove(full);

        string suffix = StaleTemporaries.NewSuffix();
        string tmpModel = full + suffix, tmpData = dataPath + suffix;
        try
        {
            var graphProto = new GraphProto { Name = model.Graph.Name, DocString = model.Graph.DocString };
            graphProto.Node.AddRange(model.Graph.Nodes);
            graphProto.Input.AddRange(model.Graph.Inputs);
            graphProto.Output.AddRange(model.Graph.Outputs);
            graphProto.ValueInfo.AddRange(model.Graph.ValueInfo);
            var offsets = DataFileWriter.Write(model.Graph, tmpData, options, cancel);
            int i = 0;
            foreach (var tensor in model.Graph.Initializers.Values)
            {
                graphProto.Initializer.Add(offsets[i] is { } offset ? TensorProtoWriter.External(tensor, dataName, offset) : TensorProtoWriter.Inline(tensor));
                i++;
            }
            bool anyExternal = offsets.Any(o => o is not null);
            var proto = model.Header.Clone();
            proto.Graph = graphProto;
            long protoSize = proto.CalculateSize();
            if (protoSize > MaxProtoBytes)
                throw new OnnxQuantException(path, $"the model proto would be {protoSize} bytes, over protobuf's 2 GB limit; lower the external data threshold", ExitCode.OutputError);
            using (var stream = new FileStream(tmpModel, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                proto.WriteTo(stream);
                stream.Flush(flushToDisk: true);
            }
            cancel.ThrowIfCancellationRequested();
            if (anyExternal)
                File.Move(tmpData, dataPath, overwrite: true);
            File.Move(tmpModel, full, overwrite: true);
        }
        catch (Exception e)
        {
            TryDelete(tmpModel);
            TryDelete(tmpData);
            if (e is IOException or UnauthorizedAccessException)
                throw new OnnxQuantException(path, $"cannot be written: {e.Message}", ExitCode.OutputError, e);
            throw;
        }
    }

    private static void CheckOutputPath(OnnxModel model, string full, string dataPath)
    {
        string? folder = Path.GetDirectoryName(full);
        if (folder is null || !Directory.Exists(folder))
            throw new OnnxQuantException(full, $"cannot be written: the folder '{folder}' does not exist", ExitCode.OutputError);
        if (Directory.Exists(full))
            throw new OnnxQuantException(full, "cannot be written: it is a folder", ExitCode.OutputError);
        if (model.SourcePath is not null && SamePath(model.SourcePath, full))
            throw new OnnxQuantException(full, "is the input model; OnnxQuant never modifies its input. Choose another output path", ExitCode.Usage);
        foreach (var source in model.ExternalDataPaths)
            if (SamePath(source, dataPath) || SamePath(source, full))
                throw new OnnxQuantException(full, $"would overwrite '{source}', which the input model reads its weights from. Choose another output name", ExitCode.Usage);
    }

    private static bool SamePath(string a, string b)
    {
        string fa = Path.GetFullPath(a), fb = Path.GetFullPath(b);
        if (fa == fb) return true;
        // Hard links and symlinks: compare the resolved targets where they exist.
        try
        {
            var ra = new FileInfo(fa).ResolveLinkTarget(true)?.FullName ?? fa;
            var rb = new FileInfo(fb).ResolveLinkTarget(true)?.FullName ?? fb;
            return ra == rb;
        }
        catch (IOException) { return false; }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
