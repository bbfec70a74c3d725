namespace OnnxQuant.Smoothing;

/// <summary>
/// Channels of an activation that must share one smoothing factor because they are copies of one source channel: a
/// grouped-query attention repeats each v_proj column for several heads, so the o_proj input channels that read one
/// column can only be divided by one s when s folds into that column (docs/architecture.md, "SmoothQuant").
/// </summary>
public sealed class ChannelTies
{
    private readonly int[] _class;
    private readonly int _classes;

    private ChannelTies(int[] classOfChannel, int classes)
    {
        _class = classOfChannel;
        _classes = classes;
    }

    /// <summary>Ties from a channel map (channel p reads source column map[p]); null when no two channels share a column.</summary>
    public static ChannelTies? FromMap(IReadOnlyList<int> map)
    {
        if (map.Distinct().Count() == map.Count)
            return null;
        int classes = map.Max() + 1;
        return new ChannelTies(map.ToArray(), classes);
    }

    public int Channels => _class.Length;

    /// <summary>Each channel gets the largest value of its class: tied channels act as one channel (SmoothQuant's maxima).</summary>
    public float[] MaxPerClass(ReadOnlySpan<float> values)
    {
        Check(values.Length);
        var max = new float[_classes];
        Array.Fill(max, float.NegativeInfinity);
        for (int p = 0; p < values.Length; p++)
            max[_class[p]] = Math.Max(max[_class[p]], values[p]);
        return _class.Select(c => max[c]).ToArray();
    }

    /// <summary>Each channel gets the geometric mean of its class's (positive) values: a tied version of any scale.</summary>
    public float[] GeometricMean(float[] values)
    {
        Check(values.Length);
        var logSum = new double[_classes];
        var count = new int[_classes];
        for (int p = 0; p < values.Length; p++)
        {
            logSum[_class[p]] += Math.Log(values[p]);
            count[_class[p]]++;
        }
        return _class.Select(c => (float)Math.Exp(logSum[c] / count[c])).ToArray();
    }

    private void Check(int length)
    {
        if (length != _class.Length)
            throw new ArgumentException($"channel ties: {length} values for {_class.Length} channels");
    }
}
