using OnnxQuant.Analysis;
using Onnx;
using OnnxQuant.IR;
using OnnxQuant.Smoothing;

namespace OnnxQuant.Review;

/// <summary>
/// The rewritten model's nodes indexed by the provenance they carry (<see cref="Provenance"/>): each original linear's
/// own nodes, the shared activation quantizers that feed it, and the inserted smoothing Muls.
/// </summary>
public sealed class EmittedNodes
{
    private readonly Dictionary<string, List<NodeProto>> _linear = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<NodeProto>> _quantizer = new(StringComparer.Ordinal);
    private readonly Dictionary<string, NodeProto> _byName = new(StringComparer.Ordinal);
    private readonly Graph _graph;

    private EmittedNodes(Graph graph) => _graph = graph;

    /// <summary>Nodes that carry provenance.</summary>
    public int ProvenanceCount { get; private set; }

    /// <summary>Names of the inserted smoothing Muls.</summary>
    public IReadOnlyList<string> InsertedMuls { get; private set; } = [];

    /// <summary>Nodes of the activation quantizers (their initializers are shared by the linears that read them).</summary>
    public IEnumerable<NodeProto> QuantizerNodes => _quantizer.Values.SelectMany(n => n).Distinct();

    public static EmittedNodes Index(Graph graph)
    {
        var index = new EmittedNodes(graph);
        var muls = new List<string>();
        foreach (var node in graph.Nodes)
        {
            if (node.Name.Length > 0)
                index._byName.TryAdd(node.Name, node);
            if (IsSmoothingMul(node))
                muls.Add(node.Name.Length > 0 ? node.Name : node.Output[0]);
            if (Provenance.Of(node) is not { } p)
                continue;
            index.ProvenanceCount++;
            if (p.Role == ProvenanceRole.Embedding)
                continue; // a table, not a linear: the diff reads embeddings from the graph (TokenTables)
            var map = p.Role == ProvenanceRole.Linear ? index._linear : index._quantizer;
            foreach (var linear in p.Linears)
            {
                if (!map.TryGetValue(linear, out var list))
                    map[linear] = list = [];
                list.Add(node);
            }
        }
        index.InsertedMuls = muls;
        return index;
    }

    public static bool IsSmoothingMul(NodeProto node) => node.IsOnnx("Mul") && node.DocString == InsertedMulFold.DocString;

    /// <summary>The nodes that compute <paramref name="linear"/>'s product in its rewritten form (none when it stayed float).</summary>
    public IReadOnlyList<NodeProto> LinearNodes(string linear) => _linear.GetValueOrDefault(linear) ?? [];

    /// <summary>A node of the rewritten graph by name, or null.</summary>
    public NodeProto? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>Input channels the shared quantizer in front of <paramref name="linear"/> gathers to the float side.</summary>
    public int FloatChannels(string linear)
    {
        var gather = _quantizer.GetValueOrDefault(linear)?.FirstOrDefault(n => n.IsOnnx("Gather"));
        return gather?.InputAt(1) is { } indices && _graph.GetConstant(indices) is { } t ? (int)t.ElementCount : 0;
    }

    /// <summary>The inserted smoothing Mul that produces the input of <paramref name="linear"/> (or of its quantizer), or null.</summary>
    public string? InsertedMulBefore(string linear, NodeProto? floatNode)
    {
        var readers = (_quantizer.GetValueOrDefault(linear) ?? []).Concat(_linear.GetValueOrDefault(linear) ?? []);
        if (floatNode is not null)
            readers = readers.Append(floatNode);
        foreach (var reader in readers)
            foreach (var input in reader.Input)
                if (input.Length > 0 && _graph.Producer(input) is { } p && IsSmoothingMul(p))
                    return p.Name.Length > 0 ? p.Name : p.Output[0];
        return null;
    }
}
