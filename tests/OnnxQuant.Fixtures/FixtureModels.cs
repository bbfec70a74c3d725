using Onnx;
using OnnxQuant.IO;
using OnnxQuant.IR;

namespace OnnxQuant.Fixtures;

/// <summary>A built fixture: the model and where its outliers are.</summary>
public sealed record BuiltFixture(ModelProto Proto, FixtureDescription Description);

/// <summary>
/// Entry point: small LLM-shaped ONNX models (docs/architecture.md, "Exported graph patterns") with seeded weights and optional injected
/// outlier channels. Equal options give byte-identical models.
/// </summary>
public static class FixtureModels
{
    public static BuiltFixture BuildWithDescription(FixtureOptions options)
    {
        options.Check();
        var graph = new GraphBuilder(options.Fp16);
        var outliers = new OutlierPlan(options);
        var weights = new FixtureWeights(graph, options, outliers);
        var sites = options.Family switch
        {
            FixtureFamily.TorchLlama or FixtureFamily.OptimumLlama => TorchLlamaFixture.Build(graph, weights, options),
            FixtureFamily.GenAiLlama => GenAiLlamaFixture.Build(graph, weights, options),
            FixtureFamily.Bert or FixtureFamily.Vit => BertFixture.Build(graph, weights, options),
            _ => throw new ArgumentOutOfRangeException(nameof(options), options.Family, "unknown fixture family"),
        };
        var description = new FixtureDescription(options, outliers.Channels, outliers.Scale, sites);
        var proto = graph.ToModelProto($"{options.Family}-fixture", description.Summary());
        SubgraphShapes.Apply(proto.Graph, options, graph.FloatType);
        using (var model = OnnxModel.FromProto(proto))
            GraphValidator.Validate(model.Graph, $"fixture {options.Family}");
        return new BuiltFixture(proto, description);
    }

    public static ModelProto Build(FixtureOptions options) => BuildWithDescription(options).Proto;

    /// <summary>The fixture as the compiler's in-memory model (all tensors inline).</summary>
    public static OnnxModel BuildModel(FixtureOptions options) => OnnxModel.FromProto(Build(options));

    /// <summary>Which channels carry outliers and at which norm outputs, without keeping the model.</summary>
    public static FixtureDescription Describe(FixtureOptions options) => BuildWithDescription(options).Description;

    /// <summary>
    /// Writes the fixture to <c>{folder}/{fileName}</c> through <see cref="ModelFile.Save"/> (by default tensors of 1 KiB
    /// or more go to <c>{fileName}.data</c>) and returns the model path.
    /// </summary>
    public static string Save(FixtureOptions options, string folder, string fileName = "model.onnx", SaveOptions? saveOptions = null)
    {
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, fileName);
        using var model = BuildModel(options);
        ModelFile.Save(model, path, saveOptions);
        return path;
    }
}
