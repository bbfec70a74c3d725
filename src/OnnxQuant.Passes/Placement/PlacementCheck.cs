using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.IO;
using OnnxQuant.IR;

namespace OnnxQuant.Placement;

/// <summary>A node the provider has no kernel for, so ONNX Runtime would run it on another provider (with copies).</summary>
/// <param name="Detail">What is missing, e.g. "input 0 is uint8; the CUDA EP registers MatMulInteger 10+ for int8 only".</param>
public sealed record PlacementIssue(string Node, string Op, string Domain, PlacementProblem Problem, string Detail);

/// <summary>The placement of a graph's nodes on one provider, as far as the kernel table judges them.</summary>
/// <param name="Judged">Nodes whose op the table covers.</param>
/// <param name="NotJudged">Ops the table does not cover, with their node counts (neither placed nor flagged).</param>
public sealed record PlacementReport(
    ExecutionProvider Provider, string OnnxRuntime, string Source, int Judged, IReadOnlyList<PlacementIssue> Fallbacks,
    IReadOnlyDictionary<string, int> NotJudged)
{
    /// <summary>Nodes the provider runs, but off its fast kernel (<see cref="FastPaths"/>).</summary>
    public IReadOnlyList<SlowPath> SlowPaths { get; init; } = [];

    /// <summary>"QLinearMatMul x 36, DynamicQuantizeLinear x 12".</summary>
    public string FallbackSummary => string.Join(", ", Fallbacks.GroupBy(f => f.Op).Select(g => $"{g.Key} x {g.Count()}"));
}

/// <summary>
/// Which nodes of a model an execution provider has no kernel for at the model's opset and the nodes' input element
/// types, from <see cref="KernelTable"/>. Types come from <see cref="ValueFacts"/>; an input whose type is not known
/// there satisfies any constraint, so an unknown never raises a false alarm. Nodes of subgraphs (If/Loop bodies) are
/// not judged, nor Constant nodes (ONNX Runtime makes them initializers before placing nodes).
/// </summary>
public static class PlacementCheck
{
    public static PlacementReport Check(OnnxModel model, ExecutionProvider provider, KernelTable? table = null)
    {
        table ??= KernelTable.Default;
        var graph = model.Graph;
        var facts = ValueFacts.Infer(graph);
        var fallbacks = new List<PlacementIssue>();
        var notJudged = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var slow = new List<SlowPath>();
        int judged = 0;
        foreach (var node in graph.Nodes)
        {
            string domain = KernelTable.Normalize(node.Domain);
            // ONNX Runtime turns Constant nodes into initializers before it assigns nodes to providers.
            if (domain.Length == 0 && node.OpType == "Constant")
                continue;
            if (!table.Covers(domain, node.OpType))
            {
                string key = domain.Length == 0 ? node.OpType : $"{domain}.{node.OpType}";
                notJudged[key] = notJudged.GetValueOrDefault(key) + 1;
                continue;
            }
            judged++;
            long opset = model.OpsetVersion(domain) ?? 1;
            if (Judge(table, provider, node, opset, facts) is { } issue)
                fallbacks.Add(issue);
            else if (FastPaths.Judge(node, provider, facts) is { } why)
                slow.Add(new SlowPath(node.Name, node.OpType, why));
        }
        return new PlacementReport(provider, table.OnnxRuntimeVersion, table.Source(provider), judged, fallbacks, notJudged) { SlowPaths = slow };
    }

    private static PlacementIssue? Judge(KernelTable table, ExecutionProvider provider, NodeProto node, long opset, ValueFacts facts)
    {
        string domain = KernelTable.Normalize(node.Domain);
        string ep = ExecutionProviders.Describe(provider);
        PlacementIssue Issue(PlacementProblem problem, string detail) => new(node.Name, node.OpType, domain, problem, detail);

        var registrations = table.Registrations(provider, domain, node.OpType);
        if (registrations.Count == 0)
            return Issue(PlacementProblem.NoKernel, $"the {ep} has no {node.OpType} kernel");
        var atOpset = registrations.Where(r => r.Covers(opset)).ToList();
        if (atOpset.Count == 0)
            return Issue(PlacementProblem.OpsetNotRegistered,
                $"the model's opset is {opset}; the {ep} registers {node.OpType} for opsets {string.Join(", ", registrations.Select(r => r.RangeText))}");
        string? mismatch = null;
        foreach (var entry in atOpset)
        {
            mismatch = TypeMismatch(entry, node, facts);
            if (mismatch is null)
                return null;
        }
        var accepted = atOpset.SelectMany(e => e.Inputs ?? []).GroupBy(p => p.Key)
            .Select(g => $"input {g.Key}: {string.Join("/", g.SelectMany(p => p.Value).Distinct())}");
        return Issue(PlacementProblem.TypeNotRegistered, $"{mismatch}; the {ep} registers {node.OpType} {atOpset[0].RangeText} for {string.Join(", ", accepted)}");
    }

    // Null when every constrained input of known type is accepted by the entry; else "input 0 is uint8".
    private static string? TypeMismatch(KernelEntry entry, NodeProto node, ValueFacts facts)
    {
        foreach (var (indexText, types) in entry.Inputs ?? [])
        {
            if (types.Contains("*"))
                continue;
            int index = int.Parse(indexText, System.Globalization.CultureInfo.InvariantCulture);
            if (node.InputAt(index) is not { Length: > 0 } value || facts.TypeOf(value) is not { } type)
                continue;
            string name = ElementType.Name(type);
            if (!types.Contains(name))
                return $"input {index} ({value}) is {name}";
        }
        return null;
    }
}
