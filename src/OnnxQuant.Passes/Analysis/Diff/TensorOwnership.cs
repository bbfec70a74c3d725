using Onnx;
using OnnxQuant.IR;

namespace OnnxQuant.Analysis.Diff;

/// <summary>
/// Assigns every initializer of both models to exactly one place: the one linear row whose nodes alone read it, or a
/// <see cref="SharedKind"/> bucket. So the rows' bytes plus the buckets' bytes equal each model's initializer total,
/// and the size change splits exactly into per-linear and whole-graph parts.
/// </summary>
internal sealed class TensorOwnership(Graph before, Graph after)
{
    public enum Side { Before, After }

    // Which row claimed each node, per side (reference equality: nodes are the graphs' own objects).
    private readonly Dictionary<NodeProto, int> _before = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<NodeProto, int> _after = new(ReferenceEqualityComparer.Instance);

    /// <summary>Row <paramref name="row"/> consists of <paramref name="nodes"/> on that side.</summary>
    public void Claim(int row, Side side, IEnumerable<NodeProto> nodes)
    {
        var map = side == Side.Before ? _before : _after;
        foreach (var node in nodes)
            map.TryAdd(node, row);
    }

    /// <summary>True when one row owns the tensor in either model (so it is not a whole-graph change).</summary>
    public bool IsOwned(string name) => Owner(before, _before, name) is not null || Owner(after, _after, name) is not null;

    /// <summary>Owned bytes per row, before and after.</summary>
    public (long Before, long After)[] Bytes(int rows)
    {
        var result = new (long Before, long After)[rows];
        foreach (var t in before.Initializers.Values)
            if (Owner(before, _before, t.Name) is { } r)
                result[r].Before += t.ByteLength;
        foreach (var t in after.Initializers.Values)
            if (Owner(after, _after, t.Name) is { } r)
                result[r].After += t.ByteLength;
        return result;
    }

    /// <summary>The initializers no row owns, by kind, with counts and bytes on each side.</summary>
    public IReadOnlyList<SharedBucket> Buckets(ModelDiff raw, IEnumerable<NodeProto> quantizerNodes)
    {
        var changed = raw.InitializersChanged.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        var quantizer = quantizerNodes.SelectMany(n => n.Input).ToHashSet(StringComparer.Ordinal);
        var smoothing = after.Nodes.Where(EmittedNodes.IsSmoothingMul).SelectMany(n => n.Input).ToHashSet(StringComparer.Ordinal);
        var sums = new Dictionary<SharedKind, (int Cb, int Ca, long Bb, long Ba)>();
        foreach (var t in before.Initializers.Values.Where(t => Owner(before, _before, t.Name) is null))
        {
            var kind = !after.Initializers.ContainsKey(t.Name) ? SharedKind.Other : changed.Contains(t.Name) ? SharedKind.ChangedValues : SharedKind.Unchanged;
            var s = sums.GetValueOrDefault(kind);
            sums[kind] = (s.Cb + 1, s.Ca, s.Bb + t.ByteLength, s.Ba);
        }
        foreach (var t in after.Initializers.Values.Where(t => Owner(after, _after, t.Name) is null))
        {
            var kind = quantizer.Contains(t.Name) ? SharedKind.ActivationQuantizers
                : smoothing.Contains(t.Name) ? SharedKind.SmoothingMuls
                : !before.Initializers.ContainsKey(t.Name) ? SharedKind.Other
                : changed.Contains(t.Name) ? SharedKind.ChangedValues : SharedKind.Unchanged;
            var s = sums.GetValueOrDefault(kind);
            sums[kind] = (s.Cb, s.Ca + 1, s.Bb, s.Ba + t.ByteLength);
        }
        return sums.OrderBy(kv => kv.Key).Select(kv => new SharedBucket(kv.Key, kv.Value.Cb, kv.Value.Ca, kv.Value.Bb, kv.Value.Ba)).ToList();
    }

    // The row whose nodes are all the readers of the tensor; null when it has none, or readers outside that row
    // (a tied embedding, a zero point several rows share).
    private static int? Owner(Graph graph, Dictionary<NodeProto, int> rows, string name)
    {
        int? owner = null;
        foreach (var reader in graph.Consumers(name))
        {
            if (!rows.TryGetValue(reader, out int r) || (owner is { } o && o != r))
                return null;
            owner = r;
        }
        return owner;
    }
}
