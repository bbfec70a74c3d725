using Onnx;
using OnnxQuant.IR;

namespace OnnxQuant.IO;

/// <summary>
/// A loaded model: its header (ir_version, opsets, metadata, functions), the graph IR, and the external data files the
/// graph's tensors still map. Dispose it when done: mapped tensors become unreadable after that.
/// </summary>
public sealed class OnnxModel : IDisposable
{
    private readonly ExternalDataFiles? _files;

    internal OnnxModel(ModelProto header, Graph graph, string? sourcePath, ExternalDataFiles? files)
    {
        Header = header;
        Graph = graph;
        SourcePath = sourcePath;
        _files = files;
    }

    /// <summary>Everything of the ModelProto but the graph.</summary>
    public ModelProto Header { get; }

    public Graph Graph { get; }

    /// <summary>The file this model was loaded from, if any.</summary>
    public string? SourcePath { get; }

    /// <summary>Full paths of the external data files the loaded model maps.</summary>
    public IEnumerable<string> ExternalDataPaths => _files?.Paths ?? Array.Empty<string>();

    /// <summary>Wraps an in-memory ModelProto (all tensors inline), e.g. one a fixture builder made.</summary>
    public static OnnxModel FromProto(ModelProto proto) => ModelFile.FromProto(proto, null, null);

    /// <summary>The opset version imported for a domain ("" is the default ONNX domain), or null if not imported.</summary>
    public long? OpsetVersion(string domain)
    {
        var d = domain == "ai.onnx" ? "" : domain;
        var import = Header.OpsetImport.FirstOrDefault(o => (o.Domain == "ai.onnx" ? "" : o.Domain) == d);
        return import?.Version;
    }

    /// <summary>Imports <paramref name="domain"/> at least at <paramref name="version"/> (a pass that emits com.microsoft ops calls this).</summary>
    public void EnsureOpset(string domain, long version)
    {
        var d = domain == "ai.onnx" ? "" : domain;
        var import = Header.OpsetImport.FirstOrDefault(o => (o.Domain == "ai.onnx" ? "" : o.Domain) == d);
        if (import is null)
            Header.OpsetImport.Add(new OperatorSetIdProto { Domain = d, Version = version });
        else if (import.Version < version)
            import.Version = version;
    }

    /// <summary>Total bytes of all initializers.</summary>
    public long WeightBytes => Graph.Initializers.Values.Sum(t => t.ByteLength);

    public void Dispose() => _files?.Dispose();
}
