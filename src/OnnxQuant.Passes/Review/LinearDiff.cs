using OnnxQuant.Analysis;
using Onnx;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Smoothing;

namespace OnnxQuant.Review;

/// <summary>The form a linear has in the rewritten model.</summary>
public enum LinearScheme
{
    Float,
    W8A8Static,
    W8A8Dynamic,
    W8A8QLinear,
    W8A8Qdq,
    W4,
    /// <summary>8-bit weight-only MatMulNBits (the LM head at --lm-head-bits 8).</summary>
    W8,
}

/// <summary>A MatMulNBits linear's layout: bits, block size, whether zero points are stored (asymmetric), accuracy level.</summary>
public sealed record W4Layout(int Bits, int BlockSize, bool ZeroPoints, int AccuracyLevel);

/// <summary>
/// The smoothing in front of a linear: from the passes' record (<see cref="SmoothingRecord"/>) when the model has it
/// (then <see cref="Method"/> and <see cref="Alpha"/> are known), else from the graph (an inserted smoothing Mul).
/// <see cref="Alpha"/> is SmoothQuant's alpha or AWQ's exponent r.
/// </summary>
public sealed record LinearSmoothing(SmoothingMethod? Method, FoldKind Fold, string Target, float? Alpha);

/// <summary>
/// One linear of the original model (a MatMul/Gemm with a constant weight) and what replaced it. Bytes are those of
/// the initializers only this linear's nodes read (weight, bias; after a rewrite also its scales and zero points), so
/// the rows plus <see cref="GraphChanges.Buckets"/> account for every initializer byte of both models.
/// </summary>
public sealed record LinearChange(string Name, LinearRole Role, string Op, int K, int N, string Dtype, long BytesBefore,
    LinearScheme Scheme, string OpAfter, long BytesAfter, W4Layout? W4, LinearSmoothing? Smoothing, int FloatChannels,
    KeepReason? Kept, string? KeptText, string Output)
{
    /// <summary>
    /// True when a later group's smoothing folded s into this linear's output columns (<see cref="SmoothedGroup.RescaledLinear"/>),
    /// so its output equals the original's divided by s per channel; a numeric comparison must allow that scale.
    /// </summary>
    public bool OutputRescaled { get; init; }

    /// <summary>The input activation as the original names it.</summary>
    public string Input { get; init; } = "";

    /// <summary>True when smoothing divided the input itself per channel (folded into its producer: a norm or a linear's columns).</summary>
    public bool InputRescaled => Smoothing is { Fold: not FoldKind.InsertedMul };

    public long BytesDelta => BytesAfter - BytesBefore;
}

/// <summary>Where the bytes of initializers that no single linear owns went (<see cref="SharedTensors"/>).</summary>
public enum SharedKind
{
    /// <summary>Same name and bytes in both models (embeddings, positions, masks).</summary>
    Unchanged,
    /// <summary>Same name, new values: norm gamma/beta scaled by smoothing, weights read by several linears.</summary>
    ChangedValues,
    /// <summary>Scales, zero points and float-channel indices of the shared activation quantizers.</summary>
    ActivationQuantizers,
    /// <summary>The 1/s constants of inserted smoothing Muls.</summary>
    SmoothingMuls,
    /// <summary>Anything else added or removed.</summary>
    Other,
}

public sealed record SharedBucket(SharedKind Kind, int CountBefore, int CountAfter, long BytesBefore, long BytesAfter);

/// <summary>
/// What changed outside the per-linear rows: initializer byte totals, the shared buckets, tensors changed in place (a
/// norm's gamma), inserted smoothing Muls, opsets, metadata keys, and how many emitted nodes carry provenance.
/// </summary>
public sealed record GraphChanges(long InitializerBytesBefore, long InitializerBytesAfter, IReadOnlyList<SharedBucket> Buckets,
    IReadOnlyList<InitializerChange> ChangedInPlace, IReadOnlyList<string> InsertedMuls, IReadOnlyList<OpsetChange> Opsets,
    IReadOnlyList<string> MetadataChanged, int ProvenanceNodes);

/// <summary>
/// The semantic diff `onnxquant diff` prints: one row per constant-weight linear of the original (main graph), matched to
/// the nodes that replaced it through their provenance (docs/architecture.md, "Diff"), plus the
/// whole-graph changes. Attention's products of two activations (<see cref="KeepReason.ComputedWeight"/>) have no
/// weight and no row; they are listed by name.
/// </summary>
public sealed record LinearDiff(IReadOnlyList<LinearChange> Linears, IReadOnlyList<string> ComputedProducts, GraphChanges Graph)
{
    /// <summary>The token embeddings and their form after (float Gather or GatherBlockQuantized).</summary>
    public IReadOnlyList<EmbeddingChange> Embeddings { get; init; } = [];

    public static LinearDiff Compare(OnnxModel before, OnnxModel after, ModelDiff raw)
    {
        var table = LinearAnalysis.Analyze(before.Graph, new LinearSelection());
        var main = table.All.Where(c => c.Scope is null).ToList();
        var computed = main.Where(c => c.Reason == KeepReason.ComputedWeight).Select(c => c.Name).ToList();
        var candidates = main.Where(c => c.Reason != KeepReason.ComputedWeight).ToList();
        var emitted = EmittedNodes.Index(after.Graph);
        var record = SmoothingRecord.Read(after.Header);
        var ownership = new TensorOwnership(before.Graph, after.Graph);
        var rows = new List<LinearChange>();
        foreach (var c in candidates)
        {
            ownership.Claim(rows.Count, TensorOwnership.Side.Before, BeforeNodes(before.Graph, c));
            var nodes = emitted.LinearNodes(c.Name);
            var floatNode = nodes.Count == 0 ? emitted.Find(c.Name) : null;
            ownership.Claim(rows.Count, TensorOwnership.Side.After, nodes.Count > 0 ? nodes.Concat(KeptBiasAdd(before.Graph, after.Graph, c))
                : floatNode is null ? [] : BeforeNodes(after.Graph, floatNode));
            rows.Add(Row(c, before.Graph, emitted, nodes, floatNode, record));
        }
        var owned = ownership.Bytes(rows.Count);
        for (int i = 0; i < rows.Count; i++)
            rows[i] = rows[i] with { BytesBefore = owned[i].Before, BytesAfter = owned[i].After };
        var graph = new GraphChanges(Total(before.Graph), Total(after.Graph), ownership.Buckets(raw, emitted.QuantizerNodes),
            raw.InitializersChanged.Where(t => !ownership.IsOwned(t.Name)).ToList(), emitted.InsertedMuls, raw.Opsets,
            MetadataChanges(before.Header, after.Header), emitted.ProvenanceCount);
        return new LinearDiff(rows, computed, graph) { Embeddings = EmbeddingChange.Compare(before.Graph, after.Graph) };
    }

    private static long Total(Graph g) => g.Initializers.Values.Sum(t => t.ByteLength);

    // The linear node, its bias Add, and (through the weight chain) the node that reads the stored weight.
    private static List<NodeProto> BeforeNodes(Graph graph, LinearCandidate c) => BeforeNodes(graph, c.Node);

    private static List<NodeProto> BeforeNodes(Graph graph, NodeProto node)
    {
        var nodes = new List<NodeProto> { node };
        if (LinearNode.TryCreate(graph, node)?.Bias?.AddNode is { } add)
            nodes.Add(add);
        for (var value = node.InputAt(1); value is not null && graph.Producer(value) is { } step && nodes.Count < 16;)
        {
            nodes.Add(step);
            value = step.InputAt(0);
        }
        return nodes;
    }

    // The W8A8 rewrite leaves a MatMul's bias Add in place, reading the product under its old name (LinearBack).
    private static IEnumerable<NodeProto> KeptBiasAdd(Graph before, Graph after, LinearCandidate c)
    {
        if (LinearNode.TryCreate(before, c.Node)?.Bias?.AddNode is { } add && after.Producer(add.Output[0]) is { } now
            && now.IsOnnx("Add") && Provenance.Of(now) is null)
            yield return now;
    }

    private static LinearChange Row(LinearCandidate c, Graph before, EmittedNodes emitted, IReadOnlyList<NodeProto> nodes,
        NodeProto? floatNode, IReadOnlyList<SmoothedGroup> record)
    {
        var role = KeepReasons.IsLmHead(c.Reason) ? LinearRole.Head : LinearRoles.FromName(c.Name);
        var scheme = nodes.Count == 0 ? LinearScheme.Float : SchemeOf(Provenance.Of(nodes[0])!.Scheme);
        var nbits = nodes.FirstOrDefault(n => n.IsMicrosoft("MatMulNBits"));
        W4Layout? w4 = nbits is null ? null : new W4Layout((int)nbits.GetInt("bits", 4), (int)nbits.GetInt("block_size", 0),
            nbits.InputAt(3) is { Length: > 0 }, (int)nbits.GetInt("accuracy_level", 0));
        string opAfter = nbits is not null ? "MatMulNBits"
            : nodes.FirstOrDefault(n => n.OpType is "MatMulInteger" or "QLinearMatMul" or "MatMul" or "Gemm")?.OpType
            ?? floatNode?.OpType ?? "(removed)";
        var smoothing = record.FirstOrDefault(g => g.Linears.Contains(c.Name)) is { } g
            ? new LinearSmoothing(g.Method, g.Fold, g.Target, g.Alpha)
            : emitted.InsertedMulBefore(c.Name, floatNode) is { } mul ? new LinearSmoothing(null, FoldKind.InsertedMul, mul, null) : null;
        KeepReason? kept = scheme != LinearScheme.Float ? null : c.Reason;
        string? keptText = kept is null ? null
            : kept == KeepReason.None ? "not rewritten (--exclude, or no calibration statistics)" : c.ReasonText;
        return new LinearChange(c.Name, role, c.Op, c.K, c.N, c.WeightDtype, 0, scheme, opAfter, 0, w4, smoothing,
            emitted.FloatChannels(c.Name), kept, keptText, LinearNode.TryCreate(before, c.Node)?.Output ?? c.Node.Output[0])
        {
            OutputRescaled = record.Any(g => g.RescaledLinear == c.Name),
            Input = c.Activation,
        };
    }

    private static LinearScheme SchemeOf(string scheme) => scheme switch
    {
        "w8a8-int8" => LinearScheme.W8A8Static,
        "w8a8-dynamic" => LinearScheme.W8A8Dynamic,
        "w8a8-qlinear" => LinearScheme.W8A8QLinear,
        "w8a8-qdq" => LinearScheme.W8A8Qdq,
        "w4-matmulnbits" or "lm-head-4bit" => LinearScheme.W4,
        "lm-head-8bit" => LinearScheme.W8,
        _ => LinearScheme.Float,
    };

    private static List<string> MetadataChanges(ModelProto before, ModelProto after)
    {
        var b = before.MetadataProps.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        return after.MetadataProps.Where(p => !b.TryGetValue(p.Key, out var v) || v != p.Value).Select(p => p.Key)
            .Concat(b.Keys.Where(k => after.MetadataProps.All(p => p.Key != k))).ToList();
    }
}
