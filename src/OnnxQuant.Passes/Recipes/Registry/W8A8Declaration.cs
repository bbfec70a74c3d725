using System.Text.Json;
using OnnxQuant.Analysis;
using OnnxQuant.Passes;
using OnnxQuant.Passes.W8A8;

namespace OnnxQuant.Recipes;

/// <summary>w8a8: the rewrite's format and its activation and weight settings.</summary>
public sealed class W8A8Declaration : PassDeclaration<W8A8RewriteSpec>
{
    public override string Name => "w8a8";

    private protected override W8A8RewriteSpec ReadSpec(JsonFields f) => new(ReadW8A8(f), new LinearSelection());

    protected override void Write(Utf8JsonWriter w, W8A8RewriteSpec spec)
    {
        var o = spec.Options;
        w.WriteString("format", RecipeFile.Pick(RecipeFile.FormatNames, RecipeFile.Formats, o.Format));
        w.WriteBoolean("reducedRange", o.ReducedRangeWeights);
        w.WriteBoolean("uint8Activations", o.UnsignedActivations);
        w.WriteNumber("maxFloatChannels", o.MaxFloatChannels);
        w.WriteBoolean("absorbSmoothingMul", o.AbsorbSmoothingMul);
        w.WriteNumber("outputRangeMargin", Math.Round(o.OutputRangeMargin, 6));
        RecipeWriter.WriteNullable(w, "floatOutliers", o.FloatOutlierThreshold is { } t ? Math.Round(t, 6) : null);
    }

    protected override W8A8RewriteSpec Bind(W8A8RewriteSpec spec, RecipeBinding binding) => new(spec.Options, binding.W8A8);

    // --float-outliers' channels are chosen by the smoothing pass, which hands them to the rewrite.
    internal override PassSpec Settle(PassSpec spec, JsonElement entry, IReadOnlyList<PassSpec> passes, int index) =>
        spec is W8A8RewriteSpec { Options.FloatOutlierThreshold: not null } && !passes.Any(p => p is SmoothQuantSpec)
            ? throw new RecipeError($"passes[{index}].floatOutliers", "is applied by the \"smoothquant\" pass, which this recipe lacks: add one before \"w8a8\", or set floatOutliers to null")
            : spec;

    private static W8A8Options ReadW8A8(JsonFields f)
    {
        var defaults = new W8A8Options();
        var options = new W8A8Options
        {
            Format = f.Choice("format", RecipeFile.FormatNames, RecipeFile.Formats) ?? defaults.Format,
            ReducedRangeWeights = f.Bool("reducedRange", defaults.ReducedRangeWeights),
            UnsignedActivations = f.Bool("uint8Activations", defaults.UnsignedActivations),
            MaxFloatChannels = f.Int("maxFloatChannels", 0, 64) ?? defaults.MaxFloatChannels,
            AbsorbSmoothingMul = f.Bool("absorbSmoothingMul", defaults.AbsorbSmoothingMul),
            OutputRangeMargin = (float)(f.Number("outputRangeMargin", 1, 16) ?? defaults.OutputRangeMargin),
            FloatOutlierThreshold = ReadFloatOutliers(f),
        };
        if (options is { UnsignedActivations: true, Format: W8A8Format.Qdq })
            throw new RecipeError(f.KeyPath("uint8Activations"), "is not available with format \"qdq\"");
        // The float channels sit beside a static int8 product: int8 and qlinear have one, dynamic and qdq do not.
        if (options.FloatOutlierThreshold is not null && options.Format is not (W8A8Format.Int8 or W8A8Format.QLinear))
            throw new RecipeError(f.KeyPath("floatOutliers"), $"needs format \"int8\" or \"qlinear\" (float channels beside a static int8 product); format \"{RecipeFile.Pick(RecipeFile.FormatNames, RecipeFile.Formats, options.Format)}\" has none");
        return options;
    }

    private static float? ReadFloatOutliers(JsonFields f)
    {
        if (f.Number("floatOutliers", 0, float.MaxValue) is not { } threshold)
            return null;
        if (threshold <= 0)
            throw new RecipeError(f.KeyPath("floatOutliers"), "must be a positive threshold on max |x| (got 0); bitsandbytes uses 6.0, null turns it off");
        return (float)threshold;
    }
}
