using Onnx;
using OnnxQuant.IR;

namespace OnnxQuant.Analysis;

/// <summary>Where a model's longest runnable sequence was read from (docs/architecture.md, "Context limits").</summary>
public enum ContextLimitSource
{
    /// <summary>A token input whose sequence dimension is a fixed number.</summary>
    StaticInput,
    /// <summary>A constant table gathered by positions (a learned position embedding, or a RoPE cos/sin cache indexed by position_ids).</summary>
    PositionTable,
    /// <summary>A constant table sliced by the runtime sequence length (a RoPE cos/sin cache, or a position-id buffer).</summary>
    SlicedTable,
    /// <summary>The cos/sin cache input of a com.microsoft RotaryEmbedding or GroupQueryAttention node.</summary>
    RotaryCache,
    /// <summary>Found by running the model at several lengths in ONNX Runtime.</summary>
    Probe,
}

/// <summary>The longest sequence a model runs, and why.</summary>
public sealed record ContextLimit(int Length, ContextLimitSource Source, string Where)
{
    /// <summary>"its RoPE table 'cos_cached' has 128 rows": the reason, for notices and errors.</summary>
    public string Reason => Source switch
    {
        ContextLimitSource.StaticInput => $"its input '{Where}' has a fixed sequence length of {Length}",
        ContextLimitSource.PositionTable => $"its position table '{Where}' has {Length} rows",
        ContextLimitSource.SlicedTable => $"its table '{Where}', sliced by the sequence length, has {Length} rows",
        ContextLimitSource.RotaryCache => $"the rotary cos/sin cache '{Where}' has {Length} rows",
        _ => $"ONNX Runtime runs it at {Length} tokens but not at {Length + 1}",
    };

    /// <summary>The usage error's words for <paramref name="option"/> <paramref name="requested"/> above the limit.</summary>
    public string TooLong(string option, int requested) =>
        $"runs at most {Length} tokens per sequence ({Reason}); {option} {requested} is longer. Give {option} {Length} or less";
}

/// <summary>
/// What the graph says about the token sequences it accepts: the longest one (<see cref="Context"/>, null when the
/// structure sets no limit) and the vocabulary (rows of the table the token ids gather from). Read from the structure
/// alone — shapes of inputs and initializers — so it costs nothing on a multi-GB model (docs/architecture.md,
/// "Context limits").
/// </summary>
public sealed record SequenceLimits(ContextLimit? Context, int? Vocabulary, string? EmbeddingTable)
{
    // What a position index passes through between its source (Range, position_ids) and the Gather.
    private static readonly HashSet<string> IndexOps = new(StringComparer.Ordinal)
    {
        "Cast", "Unsqueeze", "Squeeze", "Reshape", "Expand", "Add", "Sub", "Identity", "Slice", "Flatten", "Tile", "Mul", "CumSum",
    };

    public static SequenceLimits Find(Graph graph)
    {
        var tokenInputs = graph.Inputs.Where(i => IsTokenInput(i.Name)).Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var candidates = new List<ContextLimit>();
        foreach (var input in graph.Inputs.Where(i => IsTokenInput(i.Name) || IsPositionInput(i.Name)))
            if (FixedSequenceDim(input) is { } fixedLength)
                candidates.Add(new ContextLimit(fixedLength, ContextLimitSource.StaticInput, input.Name));

        int? vocabulary = null;
        string? embedding = null;
        foreach (var node in graph.Nodes)
        {
            if (node.IsOnnx("Gather") && node.Input.Count == 2 && Table(graph, node.Input[0]) is { } table && table.Shape.Count == 2)
            {
                if (tokenInputs.Contains(graph.StripCasts(node.Input[1])))
                    (vocabulary, embedding) = vocabulary is null ? ((int)table.Shape[0], table.Name) : (vocabulary, embedding);
                else if (IsPositionIndex(graph, node.Input[1], tokenInputs))
                    candidates.Add(new ContextLimit((int)table.Shape[0], ContextLimitSource.PositionTable, table.Name));
            }
            else if (node.IsOnnx("Slice") && node.Input.Count >= 3 && Table(graph, node.Input[0]) is { Shape.Count: >= 2 } sliced
                     && graph.GetConstant(node.Input[2]) is null && SliceAxis(graph, node, sliced.Shape.Count) is { } axis)
            {
                candidates.Add(new ContextLimit((int)sliced.Shape[axis], ContextLimitSource.SlicedTable, sliced.Name));
            }
            else if (RotaryCacheInput(node) is { } index && node.InputAt(index) is { Length: > 0 } cacheName
                     && Table(graph, cacheName) is { Shape.Count: 2 } cache)
            {
                candidates.Add(new ContextLimit((int)cache.Shape[0], ContextLimitSource.RotaryCache, cache.Name));
            }
        }
        var limit = candidates.Where(c => c.Length > 0).MinBy(c => c.Length);
        return new SequenceLimits(limit, vocabulary, embedding);
    }

    /// <summary>The names calibration feeds token ids to (the same rule as its input filler).</summary>
    public static bool IsTokenInput(string name)
    {
        string lower = name.ToLowerInvariant();
        return lower.Contains("input_ids") || lower is "input" or "ids" or "tokens";
    }

    private static bool IsPositionInput(string name) => name.Contains("position", StringComparison.OrdinalIgnoreCase);

    private static int? FixedSequenceDim(ValueInfoProto input)
    {
        var dims = input.Type?.TensorType?.Shape?.Dim;
        if (dims is null || dims.Count < 2)
            return null;
        var d = dims[1];
        return d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && d.DimValue > 0 ? (int)d.DimValue : null;
    }

    // A constant (possibly cast, as fp16 exports store their caches) with a known shape.
    private static Tensor? Table(Graph graph, string value) => graph.GetConstant(graph.StripCasts(value));

    // Positions come from a Range over the runtime length, or from a position_ids input; never from the token ids.
    private static bool IsPositionIndex(Graph graph, string value, HashSet<string> tokenInputs)
    {
        var pending = new Stack<(string Value, int Depth)>([(value, 0)]);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (pending.Count > 0)
        {
            var (current, depth) = pending.Pop();
            if (!seen.Add(current) || depth > 12 || tokenInputs.Contains(current))
                continue;
            if (graph.IsGraphInput(current))
            {
                if (IsPositionInput(current))
                    return true;
                continue;
            }
            var producer = graph.Producer(current);
            if (producer is null)
                continue;
            if (producer.IsOnnx("Range"))
                return true;
            if (producer.Domain is "" or "ai.onnx" && IndexOps.Contains(producer.OpType))
                foreach (var input in producer.Input.Where(i => i.Length > 0 && graph.GetConstant(i) is null))
                    pending.Push((input, depth + 1));
        }
        return false;
    }

    // The axis a Slice cuts: its constant axes input when it names one axis, else axis 0.
    private static int? SliceAxis(Graph graph, NodeProto slice, int rank)
    {
        if (slice.InputAt(3) is not { Length: > 0 } axesName)
            return 0;
        if (graph.GetConstant(axesName) is not { ElementCount: 1 } axes)
            return null;
        long axis = axes.ToInt64s()[0];
        axis = axis < 0 ? axis + rank : axis;
        return axis >= 0 && axis < rank ? (int)axis : null;
    }

    // com.microsoft RotaryEmbedding(input, position_ids, cos_cache, sin_cache); GroupQueryAttention's cos_cache is input 7.
    private static int? RotaryCacheInput(NodeProto node) =>
        node.IsMicrosoft("RotaryEmbedding") ? 2 : node.IsMicrosoft("GroupQueryAttention") ? 7 : null;
}
