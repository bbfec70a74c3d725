using System.Numerics.Tensors;
using OnnxQuant.Analysis;
using OnnxQuant.IR;

namespace OnnxQuant.Smoothing;

/// <summary>
/// An activation read by constant-weight linears, the place its per-channel scale s folds into, and those linears.
/// Smoothing divides the activation's channel j by s_j (<see cref="Producer"/>) and multiplies row j of every consumer's
/// weight by s_j, so each consumer computes the same product. Consumers that share the activation share one s.
/// </summary>
public sealed class SmoothingGroup
{
    public SmoothingGroup(string activation, ProducerKind producerKind, IFoldTarget producer, IReadOnlyList<LinearNode> consumers,
        IReadOnlyList<BodyConsumer>? bodyConsumers = null)
    {
        BodyConsumers = bodyConsumers ?? [];
        if (consumers.Count == 0 && BodyConsumers.Count == 0)
            throw new ArgumentException($"smoothing group '{activation}' has no consumers");
        int k = consumers.Count > 0 ? consumers[0].K : BodyConsumers[0].K;
        if (consumers.Any(c => c.K != k) || BodyConsumers.Any(c => c.K != k))
            throw new ArgumentException($"smoothing group '{activation}': consumers disagree on the channel count");
        Activation = activation;
        ProducerKind = producerKind;
        Producer = producer;
        Consumers = consumers;
        Channels = k;
    }

    /// <summary>The activation tensor as the graph names it before smoothing (an inserted Mul gives the linears a new input).</summary>
    public string Activation { get; }

    /// <summary>What computes the activation (for a path fold: the linear at the start of the path).</summary>
    public ProducerKind ProducerKind { get; }

    /// <summary>Where s folds: a norm's gamma, a linear's columns, or an inserted Mul.</summary>
    public IFoldTarget Producer { get; }

    /// <summary>The main-graph linears that read the activation, in graph order.</summary>
    public IReadOnlyList<LinearNode> Consumers { get; }

    /// <summary>
    /// The linears inside If/Loop/Scan bodies that read the activation: their rows take s with the producer's half
    /// (<see cref="ApplyToProducer"/>), so they compute the same product whatever the fold. Searches weigh them like the others.
    /// </summary>
    public IReadOnlyList<BodyConsumer> BodyConsumers { get; }

    /// <summary>Every consumer's name, main graph first, body linears by the path `inspect` prints.</summary>
    public IReadOnlyList<string> ConsumerNames => [.. Consumers.Select(c => c.Name), .. BodyConsumers.Select(c => c.QualifiedName)];

    /// <summary>Input channels of the consumers (the length of s).</summary>
    public int Channels { get; }

    /// <summary>Channels that must share one s (copies of one source column through a KV repeat); null when none.</summary>
    public ChannelTies? Ties => Producer is LinearColumnsFold fold ? ChannelTies.FromMap(fold.Map) : null;

    /// <summary>True when s reaches the activation without a new node.</summary>
    public bool IsFoldable => Producer.Kind != FoldKind.InsertedMul;

    /// <summary>Folds s: divides the activation's channels by it and multiplies the consumers' weight rows by it.</summary>
    public void Apply(Graph graph, ReadOnlySpan<float> scale)
    {
        ApplyToProducer(graph, scale);
        foreach (var consumer in Consumers)
            ScaleRows(graph, consumer, scale);
    }

    /// <summary>
    /// The producer's half of <see cref="Apply"/>: divides the activation's channels by s, and multiplies the body
    /// consumers' rows by it (an inserted Mul also feeds them). The caller then owes every main-graph consumer
    /// <see cref="MultiplyRows"/> (AWQ does it in the same read-modify-write as its clip).
    /// </summary>
    public void ApplyToProducer(Graph graph, ReadOnlySpan<float> scale)
    {
        CheckScale(scale);
        Producer.Apply(graph, scale);
        var s = scale.ToArray();
        foreach (var consumer in BodyConsumers)
            Smoothing.BodyConsumers.Edit(graph, consumer, (body, linear) =>
            {
                var kn = linear.ReadWeightKN(body);
                MultiplyRows(kn, linear.K, linear.N, s);
                ConstantEdits.RewriteWeight(body, linear, kn);
                return true;
            });
    }

    /// <summary>The name the consumers read after <see cref="Apply"/>: the activation, or an inserted Mul's output.</summary>
    public string CurrentActivation => Producer is InsertedMulFold { Inserted: { } mul } ? mul.Output[0] : Activation;

    /// <summary>The consumers as they are in the graph now (weights may have been renamed by earlier folds).</summary>
    public IReadOnlyList<LinearNode> CurrentConsumers(Graph graph) =>
        Consumers.Select(c => LinearNode.TryCreate(graph, c.Node)
            ?? throw new InvalidOperationException($"{c.Node.Describe()} is no longer a constant-weight linear")).ToList();

    /// <summary>max_n |W[j, n]| over all consumers, per input channel j: the weight side of SmoothQuant's balance.</summary>
    public float[] WeightRowAbsMax(Graph graph)
    {
        var result = new float[Channels];
        foreach (var consumer in CurrentConsumers(graph))
            LinearWeightTiles.FoldRowAbsMax(graph, consumer, result);
        foreach (var consumer in BodyConsumers)
            Smoothing.BodyConsumers.Read(graph, consumer, (body, linear) =>
            {
                LinearWeightTiles.FoldRowAbsMax(body, linear, result);
                return 0;
            });
        return result;
    }

    /// <summary>Multiplies row j of the linear's logical weight by s_j, in its storage layout and dtype.</summary>
    public static void ScaleRows(Graph graph, LinearNode linear, ReadOnlySpan<float> scale)
    {
        var current = LinearNode.TryCreate(graph, linear.Node)
            ?? throw new InvalidOperationException($"{linear.Node.Describe()} is no longer a constant-weight linear");
        var kn = current.ReadWeightKN(graph);
        MultiplyRows(kn, current.K, current.N, scale);
        ConstantEdits.RewriteWeight(graph, current, kn);
    }

    /// <summary>Multiplies row j of the logical [K, N] weight by s_j, in place.</summary>
    public static void MultiplyRows(float[] kn, int k, int n, ReadOnlySpan<float> scale)
    {
        if (scale.Length != k)
            throw new ArgumentException($"{scale.Length} scales for {k} weight rows");
        var s = scale.ToArray();
        Parallel.For(0, k, j => TensorPrimitives.Multiply(kn.AsSpan(j * n, n), s[j], kn.AsSpan(j * n, n)));
    }

    private void CheckScale(ReadOnlySpan<float> scale)
    {
        if (scale.Length != Channels)
            throw new ArgumentException($"smoothing group '{Activation}': scale has {scale.Length} entries for {Channels} channels");
        foreach (var v in scale)
            if (!(v > 0f) || !float.IsFinite(v))
                throw new ArgumentException($"smoothing group '{Activation}': scale entries must be finite and positive (got {v})");
    }

    public override string ToString() =>
        $"{Activation}: {ProducerKind} -> {Producer.Description} -> [{string.Join(", ", ConsumerNames)}]";
}
