using OnnxQuant.Fixtures;
using OnnxQuant.IO;

namespace OnnxQuant.Tests.Fixtures;

/// <summary>Outlier injection keeps the function and puts the promised channels at 20x+ the typical channel.</summary>
public class FixtureOutlierTests
{
    public static TheoryData<string> Variants() => new(FixtureRunTests.Variants.Keys);

    [Theory]
    [MemberData(nameof(Variants))]
    public void Outlier_injection_preserves_the_fp32_function(string variant)
    {
        var plain = FixtureRunTests.Variants[variant];
        var injected = plain with { OutlierChannels = 3, OutlierScale = 50f };
        var feeds = FixtureFeeds.For(plain, 2, 6, past: plain.KvCache ? 2 : 0);
        var a = FixtureFeeds.Run(FixtureModels.Build(plain), feeds);
        var b = FixtureFeeds.Run(FixtureModels.Build(injected), feeds);
        Assert.NotEmpty(a);
        foreach (var (name, result) in a)
            Assert.True(FixtureFeeds.RelativeMaxError(b[name].Values, result.Values) < 1e-4, $"{variant}: output {name} changed");
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Every_outlier_site_has_the_chosen_channels_at_20x_the_median_channel(string variant)
    {
        var o = FixtureRunTests.Variants[variant] with { OutlierChannels = 3, OutlierScale = 50f };
        var built = FixtureModels.BuildWithDescription(o);
        var plainBuilt = FixtureModels.BuildWithDescription(o with { OutlierChannels = 0 });
        var sites = built.Description.Sites.Select(s => s.Activation).ToArray();
        Assert.Equal(plainBuilt.Description.Sites.Select(s => s.Activation), sites);
        var feeds = FixtureFeeds.For(o, 2, 8, past: o.KvCache ? 2 : 0);
        var withOutliers = FixtureFeeds.Run(built.Proto, feeds, sites);
        var without = FixtureFeeds.Run(plainBuilt.Proto, feeds, sites);
        foreach (var site in sites)
        {
            var absMax = FixtureFeeds.ChannelAbsMax(withOutliers[site]);
            float median = FixtureFeeds.Median(absMax);
            foreach (int c in built.Description.OutlierChannels)
                Assert.True(absMax[c] >= 20 * median, $"{variant} {site}: channel {c} absmax {absMax[c]} vs median {median}");
            // The described channels are exactly the largest ones, what a calibration summary would list.
            var top = Enumerable.Range(0, absMax.Length).OrderByDescending(c => absMax[c]).Take(built.Description.OutlierChannels.Count);
            Assert.Equal(built.Description.OutlierChannels, top.Order());
            // Without injection no channel stands out like that, so the outliers are the injection's doing.
            var plainMax = FixtureFeeds.ChannelAbsMax(without[site]);
            Assert.True(plainMax.Max() < 8 * FixtureFeeds.Median(plainMax), $"{variant} {site}: plain model already has outliers");
        }
    }

    [Fact]
    public void Description_names_the_scaled_gamma_channels_and_the_divided_weight_rows()
    {
        var o = new FixtureOptions { Family = FixtureFamily.TorchLlama, OutlierChannels = 3, OutlierScale = 40f, Seed = 7 };
        var built = FixtureModels.BuildWithDescription(o);
        var channels = built.Description.OutlierChannels;
        Assert.Equal(3, channels.Count);
        Assert.Equal(channels.Order().Distinct(), channels);
        Assert.All(channels, c => Assert.InRange(c, 0, o.Hidden - 1));
        Assert.Equal(40f, built.Description.OutlierScale);
        Assert.Equal(2 * o.Layers + 1, built.Description.Sites.Count);
        // A fixture with more outliers keeps the channels of one with fewer (a prefix of one seeded permutation).
        var five = FixtureModels.Describe(o with { OutlierChannels = 5 }).OutlierChannels;
        Assert.Subset(five.ToHashSet(), channels.ToHashSet());

        using var injected = FixtureModels.BuildModel(o);
        using var plain = FixtureModels.BuildModel(o with { OutlierChannels = 0 });
        // Outlier channels of each norm get gamma = scale x the norm's median |gamma|; other channels are untouched.
        const string gammaName = "model.layers.1.input_layernorm.weight";
        var plainGamma = plain.Graph.GetInitializer(gammaName)!.ToFloats();
        var injectedGamma = injected.Graph.GetInitializer(gammaName)!.ToFloats();
        float median = plainGamma.Select(Math.Abs).Order().ElementAt(o.Hidden / 2);
        for (int c = 0; c < o.Hidden; c++)
            Assert.Equal(channels.Contains(c) ? 40f * median : plainGamma[c], injectedGamma[c], 4);
        // ...and the weights reading that norm (layer 1's q/k/v) have those rows divided by the same factor.
        Assert.Equal(3, built.Description.Sites[2].Consumers.Count);
        foreach (var consumer in built.Description.Sites[2].Consumers)
        {
            var node = injected.Graph.Nodes.Single(n => n.Name == consumer);
            var ratio = Ratio(injected, plain, node.Input[1]);
            int cols = (int)injected.Graph.GetInitializer(node.Input[1])!.Shape[1];
            for (int row = 0; row < o.Hidden; row++)
                for (int col = 0; col < cols; col += 7)
                    Assert.Equal(plainGamma[row] / injectedGamma[row], ratio[row * cols + col], 5);
        }
    }

    private static float[] Ratio(OnnxModel a, OnnxModel b, string initializer)
    {
        var x = a.Graph.GetInitializer(initializer)!.ToFloats();
        var y = b.Graph.GetInitializer(initializer)!.ToFloats();
        return x.Zip(y, (p, q) => p / q).ToArray();
    }
}
