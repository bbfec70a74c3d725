using System.Numerics.Tensors;

namespace OnnxQuant.Statistics;

/// <summary>
/// What calibration learned about one activation tensor (the input of quantizable MatMul/Gemm nodes), reduced over every
/// calibration token: per-channel max |x| and mean |x|, the tensor's min and max, and a bounded sample of whole rows
/// (tokens) that AWQ's scale search replays. Channels are the tensor's last axis.
/// </summary>
public sealed class ActivationStats
{
    public ActivationStats(string name, float[] absMax, float[] meanAbs, float min, float max, long tokenCount, float[] sampleRows, int sampleRowCount)
    {
        if (absMax.Length == 0)
            throw new ArgumentException($"activation '{name}' has no channels");
        if (meanAbs.Length != absMax.Length)
            throw new ArgumentException($"activation '{name}': {meanAbs.Length} mean values for {absMax.Length} channels");
        if (sampleRows.Length != (long)sampleRowCount * absMax.Length)
            throw new ArgumentException($"activation '{name}': {sampleRows.Length} sample values for {sampleRowCount} rows of {absMax.Length} channels");
        Name = name;
        AbsMax = absMax;
        MeanAbs = meanAbs;
        Min = min;
        Max = max;
        TokenCount = tokenCount;
        SampleRows = sampleRows;
        SampleRowCount = sampleRowCount;
    }

    /// <summary>The tensor's name in the graph.</summary>
    public string Name { get; }

    public int Channels => AbsMax.Length;

    /// <summary>max |x| per channel over all calibration tokens.</summary>
    public float[] AbsMax { get; }

    /// <summary>mean |x| per channel over all calibration tokens.</summary>
    public float[] MeanAbs { get; }

    /// <summary>Smallest value anywhere in the tensor.</summary>
    public float Min { get; }

    /// <summary>Largest value anywhere in the tensor.</summary>
    public float Max { get; }

    /// <summary>How many rows (tokens) were reduced.</summary>
    public long TokenCount { get; }

    /// <summary>Sampled rows, row-major <c>[SampleRowCount, Channels]</c>.</summary>
    public float[] SampleRows { get; }

    public int SampleRowCount { get; }

    public ReadOnlySpan<float> SampleRow(int row) => SampleRows.AsSpan(row * Channels, Channels);

    /// <summary>At most <paramref name="max"/> sample rows, evenly spaced ([count, Channels]); all of them when there are no more.</summary>
    public float[] EvenlySpacedRows(int max, out int count)
    {
        count = Math.Min(max, SampleRowCount);
        if (count == SampleRowCount)
            return SampleRows;
        var result = new float[(long)count * Channels];
        for (int i = 0; i < count; i++)
            SampleRow((int)((long)i * SampleRowCount / count)).CopyTo(result.AsSpan(i * Channels, Channels));
        return result;
    }

    /// <summary>max over channels of AbsMax divided by its median: how much the worst channel stands out.</summary>
    public float MaxOverMedian()
    {
        float median = MedianAbsMax();
        float max = TensorPrimitives.Max(AbsMax);
        return median > 0 ? max / median : float.PositiveInfinity;
    }

    public float MedianAbsMax()
    {
        var sorted = (float[])AbsMax.Clone();
        Array.Sort(sorted);
        int n = sorted.Length;
        return n % 2 == 1 ? sorted[n / 2] : 0.5f * (sorted[n / 2 - 1] + sorted[n / 2]);
    }

    /// <summary>The <paramref name="count"/> channels with the largest AbsMax, largest first (ties: lower index first).</summary>
    public int[] TopChannels(int count)
    {
        var order = Enumerable.Range(0, Channels).ToArray();
        Array.Sort(order, (a, b) => AbsMax[b] != AbsMax[a] ? AbsMax[b].CompareTo(AbsMax[a]) : a.CompareTo(b));
        return order.Take(Math.Min(count, Channels)).ToArray();
    }
}
