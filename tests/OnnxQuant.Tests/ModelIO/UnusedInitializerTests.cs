using OnnxQuant.Analysis;
using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.Passes;
using OnnxQuant.Passes.W8A8;

namespace OnnxQuant.Tests.ModelIO;

/// <summary>No emitted model keeps an initializer nothing reads: a body's rewrite used to leave its outer float weight behind (issue 31).</summary>
public class UnusedInitializerTests
{
    public static TheoryData<string> Fixtures() =>
    [
        "TorchLlama", "GenAiLlama", "OptimumLlama", "Bert", "Vit",
        "IfQueryProjection", "IfDownProjection", "LoopQueryProjection", "TiedHeadTransposed",
    ];

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void EmittedModelsReadEveryInitializer(string fixture)
    {
        foreach (string scheme in new[] { "rtn", "dynamic" })
        {
            using var model = FixtureModels.BuildModel(Options(fixture));
            var spec = scheme == "rtn"
                ? Presets.Awq(new W4RewriteOptions(), null)
                : Presets.Smooth(new LinearSelection(), null, new W8A8Options { Format = W8A8Format.Dynamic });
            var steps = spec.Build().Run(model, new PassContext { Analyses = OnnxQuant.Tests.Support.PassRun.Analyses(null) });
            Assert.Contains(steps, s => s.Pass is "w4-rewrite" or "w8a8" && s.Result.Changed);
            Assert.Equal([], UnusedInitializers.Find(model.Graph));
        }
    }

    private static FixtureOptions Options(string fixture)
    {
        var small = new FixtureOptions { Layers = 2, Hidden = 64, Heads = 4, Intermediate = 128, Vocab = 128, Seed = 5 };
        return fixture switch
        {
            "TiedHeadTransposed" => small with { TiedHeadTransposed = true },
            _ when Enum.TryParse<FixtureFamily>(fixture, out var family) => small with { Family = family },
            _ => small with { Subgraphs = Enum.Parse<SubgraphShape>(fixture) },
        };
    }
}
