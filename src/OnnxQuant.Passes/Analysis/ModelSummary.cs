using Onnx;
using OnnxQuant.IO;
using OnnxQuant.IR;

namespace OnnxQuant.Analysis;

/// <summary>
/// What `onnxquant inspect` shows, as plain data (serialized as is for --json): header facts, graph inputs/outputs, the op
/// histogram, parameters by dtype and every MatMul/Gemm with the linear analysis' verdict and the producer of its activation.
/// </summary>
public sealed record ModelSummary(
    ModelFiles Files,
    long IrVersion,
    string Producer,
    IReadOnlyList<OpsetEntry> Opsets,
    IReadOnlyList<ValueSummary> Inputs,
    IReadOnlyList<ValueSummary> Outputs,
    int NodeCount,
    IReadOnlyList<OpCount> Ops,
    IReadOnlyList<DtypeParameters> Parameters,
    long ParameterCount,
    long ParameterBytes,
    IReadOnlyList<LinearSummary> Linears)
{
    /// <summary>Token embeddings: float Gathers or GatherBlockQuantized (with bits, block size and bytes).</summary>
    public IReadOnlyList<EmbeddingSummary> Embeddings { get; init; } = [];

    /// <summary>How OnnxQuant made the model (its onnxquant.* metadata_props, docs/recipes.md); empty for other models.</summary>
    public IReadOnlyList<MetadataEntry> Provenance { get; init; } = [];

    public int QuantizableMatMuls => Linears.Count(l => l.Op == "MatMul" && l.Reason == KeepReason.None);

    public int QuantizableGemms => Linears.Count(l => l.Op == "Gemm" && l.Reason == KeepReason.None);

    /// <summary>The linears kept in float, by reason (the counts add up with the quantizable ones to every MatMul/Gemm).</summary>
    public IReadOnlyList<KeptCount> Kept => Linears.Where(l => l.Reason != KeepReason.None)
        .GroupBy(l => l.Reason).Select(g => new KeptCount(g.Key, KeepReasons.Describe(g.Key), g.Count())).ToList();

    /// <summary>The summary with the linear analysis under the commands' default options (the LM head kept).</summary>
    public static ModelSummary Create(OnnxModel model) => Create(model, new LinearSelection());

    public static ModelSummary Create(OnnxModel model, LinearSelection selection)
    {
        var graph = model.Graph;
        var table = LinearAnalysis.Analyze(graph, selection);
        var linears = LinearNode.FindAll(graph);
        var constants = graph.Initializers.Values.Concat(ConstantNodeTensors(graph)).ToList();
        var parameters = constants
            .GroupBy(t => ElementType.Name(t.DataType))
            .Select(g => new DtypeParameters(g.Key, g.Count(), g.Sum(t => t.ElementCount), g.Sum(t => t.ByteLength)))
            .OrderByDescending(p => p.Bytes)
            .ToList();
        var ops = graph.Nodes
            .GroupBy(OpName)
            .Select(g => new OpCount(g.Key, g.Count()))
            .OrderByDescending(o => o.Count).ThenBy(o => o.Op, StringComparer.Ordinal)
            .ToList();
        var producer = model.Header.ProducerName + (model.Header.ProducerVersion.Length > 0 ? " " + model.Header.ProducerVersion : "");
        return new ModelSummary(
            ModelFiles.Of(model),
            model.Header.IrVersion,
            producer.Trim(),
            model.Header.OpsetImport.Select(o => new OpsetEntry(o.Domain is "" or "ai.onnx" ? "ai.onnx" : o.Domain, o.Version)).ToList(),
            graph.Inputs.Where(i => !graph.Initializers.ContainsKey(i.Name)).Select(ValueSummary.Of).ToList(),
            graph.Outputs.Select(ValueSummary.Of).ToList(),
            graph.Nodes.Count,
            ops,
            parameters,
            parameters.Sum(p => p.Elements),
            parameters.Sum(p => p.Bytes),
            table.All.Select(c => LinearSummary.Of(graph, c, linears)).ToList())
        {
            Embeddings = TokenTables.Summaries(graph),
        };
    }

    /// <summary>"MatMul", or "com.microsoft.MatMulNBits" for ops outside the default domain.</summary>
    public static string OpName(NodeProto node) =>
        node.Domain is "" or "ai.onnx" ? node.OpType : $"{node.Domain}.{node.OpType}";

    private static IEnumerable<Tensor> ConstantNodeTensors(Graph graph)
    {
        foreach (var node in graph.Nodes)
            if (node.IsOnnx("Constant") && node.Output.Count == 1 && graph.GetConstant(node.Output[0]) is { } t)
                yield return t;
    }
}

/// <summary>The model file, the external data files it maps, and their sizes in bytes (0 for an in-memory model).</summary>
public sealed record ModelFiles(string? Path, long ModelBytes, IReadOnlyList<string> ExternalData, long ExternalDataBytes)
{
    public long TotalBytes => ModelBytes + ExternalDataBytes;

    public static ModelFiles Of(OnnxModel model)
    {
        long modelBytes = model.SourcePath is { } p && File.Exists(p) ? new FileInfo(p).Length : 0;
        var data = model.ExternalDataPaths.Distinct().ToList();
        return new ModelFiles(model.SourcePath, modelBytes, data, data.Where(File.Exists).Sum(d => new FileInfo(d).Length));
    }
}

public sealed record OpsetEntry(string Domain, long Version);

public sealed record MetadataEntry(string Key, string Value);

public sealed record OpCount(string Op, int Count);

public sealed record DtypeParameters(string Dtype, int Tensors, long Elements, long Bytes);

/// <summary>A graph input or output: element type and shape, symbolic dims by name and unknown dims as "?".</summary>
public sealed record ValueSummary(string Name, string Dtype, IReadOnlyList<string>? Shape)
{
    public static ValueSummary Of(ValueInfoProto value)
    {
        var tensor = value.Type?.TensorType;
        if (tensor is null)
            return new ValueSummary(value.Name, value.Type?.ValueCase.ToString().ToLowerInvariant() ?? "unknown", null);
        var shape = tensor.Shape?.Dim.Select(d => d.ValueCase switch
        {
            TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue => d.DimValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
            TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam => d.DimParam,
            _ => "?",
        }).ToList();
        return new ValueSummary(value.Name, ElementType.Name(tensor.ElemType), shape);
    }

    [System.Text.Json.Serialization.JsonIgnore]
    public string ShapeText => Shape is null ? "(unknown rank)" : $"[{string.Join(", ", Shape)}]";
}

/// <summary>One MatMul/Gemm: its verdict, its logical K x N weight and what produces its activation (main graph only).</summary>
public sealed record LinearSummary(
    string Name,
    string Op,
    string? Scope,
    string Verdict,
    KeepReason Reason,
    string Activation,
    int K,
    int N,
    string WeightDtype,
    string? WeightVia,
    bool Bias,
    ProducerKind? ProducerKind,
    string? ProducerNode,
    int ProducerOutput,
    string? Gamma,
    string? Beta)
{
    public static LinearSummary Of(Graph graph, LinearCandidate candidate, IReadOnlyList<LinearNode> all)
    {
        var linear = candidate.Scope is null ? LinearNode.TryCreate(graph, candidate.Node) : null;
        var producer = linear is not null ? ActivationProducer.Of(graph, linear, all)
            : candidate.Scope is null && candidate.K > 0 && !KeepReasons.IsStructural(candidate.Reason) ? ActivationProducer.Classify(graph, candidate.Activation, all)
            : null;
        return new LinearSummary(candidate.Name, candidate.Op, candidate.Scope, candidate.Quantizable ? "quantizable" : "kept: " + candidate.ReasonText,
            candidate.Reason, candidate.Activation, candidate.K, candidate.N, candidate.WeightDtype, candidate.WeightVia, linear?.Bias is not null,
            producer?.Kind, producer?.Node?.Name, producer?.OutputIndex ?? 0, producer?.Norm?.Gamma, producer?.Norm?.Beta);
    }
}

public sealed record KeptCount(KeepReason Reason, string Why, int Count);
