using System.Text.Json;
using System.Text.Json.Serialization;

namespace OnnxQuant.Placement;

/// <summary>One kernel registration: the op, its opset range and the element types it accepts per input index.</summary>
public sealed record KernelEntry(
    [property: JsonPropertyName("op")] string Op,
    [property: JsonPropertyName("domain")] string Domain,
    [property: JsonPropertyName("since")] int Since,
    [property: JsonPropertyName("until")] int? Until,
    [property: JsonPropertyName("inputs")] Dictionary<string, string[]>? Inputs)
{
    public bool Covers(long opset) => opset >= Since && (Until is null || opset <= Until);

    /// <summary>"1-12", "13+".</summary>
    public string RangeText => Until is { } until ? $"{Since}-{until}" : $"{Since}+";
}

/// <summary>
/// ONNX Runtime 1.31's kernel registrations per execution provider for the ops OnnxQuant emits and those common in
/// exported LLM graphs, kept as data (Placement/ort-kernels.json, an embedded resource that names the ORT source files it
/// was read from; docs/architecture.md, "Execution-provider placement"). Ops outside its <c>covered</c> list are not judged.
/// </summary>
public sealed class KernelTable
{
    private sealed record Document(
        [property: JsonPropertyName("onnxruntime")] string OnnxRuntime,
        [property: JsonPropertyName("sources")] Dictionary<string, string> Sources,
        [property: JsonPropertyName("covered")] List<CoveredOp> Covered,
        [property: JsonPropertyName("providers")] Dictionary<string, List<KernelEntry>> Providers);

    private sealed record CoveredOp([property: JsonPropertyName("domain")] string Domain, [property: JsonPropertyName("op")] string Op);

    private static readonly Lazy<KernelTable> Embedded = new(Load);
    private readonly Document _document;
    private readonly HashSet<(string Domain, string Op)> _covered;

    private KernelTable(Document document)
    {
        _document = document;
        _covered = document.Covered.Select(c => (c.Domain, c.Op)).ToHashSet();
    }

    /// <summary>The table shipped in the assembly.</summary>
    public static KernelTable Default => Embedded.Value;

    /// <summary>The ONNX Runtime version the table describes ("1.31").</summary>
    public string OnnxRuntimeVersion => _document.OnnxRuntime;

    /// <summary>Where the provider's rows were read from.</summary>
    public string Source(ExecutionProvider provider) => _document.Sources[ExecutionProviders.Key(provider)];

    /// <summary>True when the table judges the op (it lists every provider's registrations of it, possibly none).</summary>
    public bool Covers(string domain, string op) => _covered.Contains((Normalize(domain), op));

    /// <summary>The provider's registrations of the op (empty: no kernel).</summary>
    public IReadOnlyList<KernelEntry> Registrations(ExecutionProvider provider, string domain, string op)
    {
        string d = Normalize(domain);
        return _document.Providers[ExecutionProviders.Key(provider)].Where(e => e.Op == op && e.Domain == d).ToList();
    }

    public static string Normalize(string domain) => domain == "ai.onnx" ? "" : domain;

    private static KernelTable Load()
    {
        var assembly = typeof(KernelTable).Assembly;
        string name = assembly.GetManifestResourceNames().Single(n => n.EndsWith("ort-kernels.json", StringComparison.Ordinal));
        using var stream = assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"embedded resource {name} is missing");
        var document = JsonSerializer.Deserialize<Document>(stream)
            ?? throw new InvalidOperationException("the kernel table is empty");
        return new KernelTable(document);
    }
}
