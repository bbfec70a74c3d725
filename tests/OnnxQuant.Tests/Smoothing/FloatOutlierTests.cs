using OnnxQuant.Smoothing;

namespace OnnxQuant.Tests.Smoothing;

/// <summary>--float-outliers: LLM.int8()'s threshold rule on the alpha search, on activations with planted outliers.</summary>
public class FloatOutlierTests
{
    private const int Rows = 256, K = 64, N = 48;

    // Channels 5, 17 and 40 carry outliers of max 40, 12 and 7; channel 22 peaks at 5.5 (under bitsandbytes' 6.0); the rest at 1.
    private static readonly Dictionary<int, float> Planted = new() { [5] = 40f, [17] = 12f, [40] = 7f, [22] = 5.5f };

    private static (float[] X, float[] W, float[] AbsMax, float[] WMax) Layer(int seed) =>
        OutlierLayer.Make(seed, Rows, K, N, k => Planted.GetValueOrDefault(k, 1f));

    [Fact]
    public void ThresholdKeepsExactlyTheChannelsAboveIt()
    {
        var scheme = new FakeQuantScheme { OutlierThreshold = 6f };
        var (_, _, absMax, _) = Layer(1);
        Assert.Equal([5, 17, 40], scheme.OutlierChannels(absMax));
        Assert.Equal([5, 17, 22, 40], (scheme with { OutlierThreshold = 5f }).OutlierChannels(absMax));
        Assert.Empty(new FakeQuantScheme().OutlierChannels(absMax));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void OutlierChannelsInFloatCutTheErrorOfSmoothingAlone(int seed)
    {
        var (x, w, absMax, wMax) = Layer(seed);
        SearchWeight[] weights = [new("w", w, K, N)];
        var smoothingOnly = AlphaSearch.Run(x, Rows, absMax, weights, wMax, new FakeQuantScheme());
        var capped = AlphaSearch.Run(x, Rows, absMax, weights, wMax, new FakeQuantScheme { MaxFloatChannels = 4 });
        var threshold = AlphaSearch.Run(x, Rows, absMax, weights, wMax, new FakeQuantScheme { OutlierThreshold = 6f, MaxFloatChannels = 4 });

        Assert.Equal([5, 17, 40], threshold.FloatChannels);
        Assert.Empty(smoothingOnly.FloatChannels);
        // Static per-tensor int8 with a 40x channel: even smoothed, the outliers cost most of the error; in float they cost none.
        Assert.True(threshold.Error * 3 < smoothingOnly.Error, $"threshold {threshold.Error:E3} vs smoothing only {smoothingOnly.Error:E3}");
        // A lower threshold takes channel 22 (5.5) too; one more exact channel can only lower the error (measured ~4x here),
        // which is also what the up-to-4 search finds when it takes the same four.
        var lower = AlphaSearch.Run(x, Rows, absMax, weights, wMax, new FakeQuantScheme { OutlierThreshold = 5f });
        Assert.Equal([5, 17, 22, 40], lower.FloatChannels);
        Assert.True(lower.Error < threshold.Error, $"threshold 5: {lower.Error:E3}, threshold 6: {threshold.Error:E3}");
        if (capped.FloatChannels.SequenceEqual(lower.FloatChannels))
            Assert.True(lower.Error <= capped.Error * (1 + 1e-9), $"same channels: threshold {lower.Error:E3}, searched {capped.Error:E3} (the search tries fewer alphas)");
        // The reference "unsmoothed" loss is the plain int8 product's, the same whichever way the channels were chosen.
        Assert.Equal(smoothingOnly.UnsmoothedError, threshold.UnsmoothedError, 12);
    }

    [Fact]
    public void PerTokenActivationsIgnoreTheThreshold()
    {
        var (x, w, absMax, wMax) = Layer(4);
        var choice = AlphaSearch.Run(x, Rows, absMax, [new SearchWeight("w", w, K, N)], wMax,
            new FakeQuantScheme { PerTokenActivations = true, OutlierThreshold = 6f });
        Assert.Empty(choice.FloatChannels);
    }
}
