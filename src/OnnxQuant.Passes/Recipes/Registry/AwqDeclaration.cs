using System.Text.Json;
using OnnxQuant.Awq;
using OnnxQuant.Passes;

namespace OnnxQuant.Recipes;

/// <summary>awq: the scale and clip search's settings; its 4-bit blocks are the w4-rewrite entry's.</summary>
public sealed class AwqDeclaration : PassDeclaration<AwqSpec>
{
    public override string Name => "awq";

    private protected override AwqSpec ReadSpec(JsonFields f) => new(ReadAwq(f));

    protected override void Write(Utf8JsonWriter w, AwqSpec spec)
    {
        var a = spec.Options;
        w.WriteNumber("gridPoints", a.Search.GridPoints);
        w.WriteBoolean("duoScaling", a.Search.DuoScaling);
        w.WriteBoolean("clip", a.Search.Clip);
        w.WriteNumber("clipSteps", a.Search.ClipSteps);
        w.WriteNumber("maxShrink", Math.Round(a.Search.MaxShrink, 6));
        w.WriteNumber("maxRows", a.Search.MaxRows);
        w.WriteBoolean("insertMul", a.InsertMul);
        w.WriteBoolean("blockLoss", a.BlockLoss);
    }

    protected override AwqSpec Bind(AwqSpec spec, RecipeBinding binding) => new(spec.Options with
    {
        Selection = binding.W4,
        Search = spec.Options.Search with { Quantization = binding.Rewrite4?.Options.Quantization ?? spec.Options.Search.Quantization },
    });

    // An awq entry that does not say "clip" runs the clip search unless a bits-plan follows: the plan may lift a clamped
    // weight to 8 bits or float (the same default as `onnxquant awq --bits-budget`).
    internal override PassSpec Settle(PassSpec spec, JsonElement entry, IReadOnlyList<PassSpec> passes, int index) =>
        passes.Any(p => p is MixedPrecisionSpec) && !entry.TryGetProperty("clip", out _) && spec is AwqSpec awq
            ? awq with { Options = awq.Options with { Search = awq.Options.Search with { Clip = false } } }
            : spec;

    private static AwqPassOptions ReadAwq(JsonFields f)
    {
        var defaults = new AwqOptions();
        var search = new AwqOptions
        {
            GridPoints = f.Int("gridPoints", 1, 1000) ?? defaults.GridPoints,
            DuoScaling = f.Bool("duoScaling", defaults.DuoScaling),
            Clip = f.Bool("clip", defaults.Clip),
            ClipSteps = f.Int("clipSteps", 1, 1000) ?? defaults.ClipSteps,
            MaxShrink = (float)(f.Number("maxShrink", 0.001, 0.999) ?? defaults.MaxShrink),
            MaxRows = f.Int("maxRows", 1, 1_000_000) ?? defaults.MaxRows,
        };
        var passDefaults = new AwqPassOptions();
        return new AwqPassOptions
        {
            Search = search,
            InsertMul = f.Bool("insertMul", passDefaults.InsertMul),
            BlockLoss = f.Bool("blockLoss", passDefaults.BlockLoss),
        };
    }
}
