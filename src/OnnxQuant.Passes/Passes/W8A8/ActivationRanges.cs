using System.Numerics.Tensors;
using OnnxQuant.Statistics;

namespace OnnxQuant.Passes.W8A8;

/// <summary>
/// The calibrated per-channel max |x| (and sample rows) of every linear input, kept current as passes rescale
/// activations: smoothing divides a group's activation by s (same name when folded, a new name when a Mul is inserted),
/// so its range and rows divide too. The W8A8 rewrite reads its static scales from here.
/// </summary>
public sealed class ActivationRanges
{
    private sealed record Entry(float[] AbsMax, ActivationStats? Source, float[]? Divisor);

    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int[]> _floatChannels = new(StringComparer.Ordinal);

    public static ActivationRanges From(CalibrationStats stats)
    {
        var ranges = new ActivationRanges();
        foreach (var t in stats.Tensors)
            ranges._entries[t.Name] = new Entry((float[])t.AbsMax.Clone(), t, null);
        return ranges;
    }

    public IReadOnlyCollection<string> Names => _entries.Keys;

    /// <summary>max |x| per channel, or null when the tensor was not calibrated.</summary>
    public float[]? AbsMax(string tensor) => _entries.GetValueOrDefault(tensor)?.AbsMax;

    /// <summary>max |x| over the tensor's int8 channels (all but its float channels), or null.</summary>
    public float? TensorAbsMax(string tensor)
    {
        if (!_entries.TryGetValue(tensor, out var e))
            return null;
        if (!_floatChannels.TryGetValue(tensor, out var split))
            return TensorPrimitives.Max(e.AbsMax);
        var rest = (float[])e.AbsMax.Clone();
        foreach (int j in split)
            rest[j] = 0;
        return TensorPrimitives.Max(rest);
    }

    /// <summary>Channels of the tensor its linears compute in floating point beside the int8 product (empty: none).</summary>
    public IReadOnlyList<int> FloatChannels(string tensor) => _floatChannels.GetValueOrDefault(tensor) ?? [];

    public void SetFloatChannels(string tensor, IReadOnlyList<int> channels)
    {
        if (channels.Count == 0)
            _floatChannels.Remove(tensor);
        else
            _floatChannels[tensor] = channels.Order().ToArray();
    }

    /// <summary>Records that <paramref name="to"/> is <paramref name="from"/> with channel j divided by s_j.</summary>
    public void Rescale(string from, string to, ReadOnlySpan<float> scale)
    {
        if (!_entries.TryGetValue(from, out var e))
            return;
        var absMax = new float[e.AbsMax.Length];
        TensorPrimitives.Divide(e.AbsMax, scale, absMax);
        var divisor = scale.ToArray();
        if (e.Divisor is not null)
            TensorPrimitives.Multiply(divisor, e.Divisor, divisor);
        _entries[to] = new Entry(absMax, e.Source, divisor);
    }

    /// <summary>The recorded sample rows as the tensor holds them now ([count, channels]), or null.</summary>
    public (float[] Rows, int Count)? SampleRows(string tensor)
    {
        if (!_entries.TryGetValue(tensor, out var e) || e.Source is not { SampleRowCount: > 0 } source)
            return null;
        var rows = (float[])source.SampleRows.Clone();
        if (e.Divisor is { } d)
            for (int r = 0; r < source.SampleRowCount; r++)
                TensorPrimitives.Divide(rows.AsSpan(r * d.Length, d.Length), d, rows.AsSpan(r * d.Length, d.Length));
        return (rows, source.SampleRowCount);
    }
}
