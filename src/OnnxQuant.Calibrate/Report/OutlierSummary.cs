using OnnxQuant.Statistics;

namespace OnnxQuant.Calibrate.Report;

/// <summary>One tensor's outlier picture: how far its worst channels stand above the median channel.</summary>
/// <param name="Tensor">The activation's name.</param>
/// <param name="Channels">Its channel count.</param>
/// <param name="Median">Median over channels of max |x|.</param>
/// <param name="Top">The channels with the largest max |x|, largest first, with max |x| / median.</param>
public sealed record TensorOutliers(string Tensor, int Channels, float Median, IReadOnlyList<ChannelOutlier> Top)
{
    public float Ratio => Top.Count > 0 ? Top[0].Ratio : 1f;
}

public sealed record ChannelOutlier(int Channel, float AbsMax, float Ratio);

/// <summary>Ranks tensors and channels by max |x| over the median channel, as the CLI summary and the report show them.</summary>
public static class OutlierSummary
{
    public static TensorOutliers For(ActivationStats stats, int topChannels = 3)
    {
        float median = stats.MedianAbsMax();
        var top = stats.TopChannels(topChannels)
            .Select(c => new ChannelOutlier(c, stats.AbsMax[c], median > 0 ? stats.AbsMax[c] / median : float.PositiveInfinity))
            .ToList();
        return new TensorOutliers(stats.Name, stats.Channels, median, top);
    }

    /// <summary>Every tensor, the most outlier-ridden first (ties by name).</summary>
    public static List<TensorOutliers> Rank(CalibrationStats stats, int topChannels = 3) =>
        stats.Tensors.Select(t => For(t, topChannels))
            .OrderByDescending(t => t.Ratio).ThenBy(t => t.Tensor, StringComparer.Ordinal)
            .ToList();
}
