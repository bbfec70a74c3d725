using OnnxQuant.Advice;
using OnnxQuant.Passes;
using OnnxQuant.Passes.W8A8;
using OnnxQuant.Placement;
using OnnxQuant.Quantization;
using OnnxQuant.Recipes;
using OnnxQuant.Statistics;

namespace OnnxQuant.Cli;

/// <summary>
/// The recipe (docs/recipes.md) that applies an advice: the preset of the command the recommended scheme names (`smooth`
/// or `awq`, <see cref="RecipePresets"/>) with the linears to keep in float as float overrides, calibrated as the advice was.
/// </summary>
public static class AdviceRecipe
{
    /// <param name="exclude">advise's --exclude patterns: left out of the advice, so kept in float by the recipe too.</param>
    /// <param name="calibration">The command line's calibration settings; samples, length and seed are replaced by those the advice measured on.</param>
    public static Recipe Build(AdviceReport report, IReadOnlyList<string> exclude, bool includeLmHead, CalibrationInfo measured, CalibrationSettings calibration)
    {
        var scheme = report.Recommendation.Scheme;
        var keep = exclude.Concat(report.Recommendation.KeepInFloat).ToList();
        // The statistics file belongs to this model; the recipe calibrates afresh on the same data and window sizes.
        var settings = calibration with { Stats = null };
        if (measured.Samples > 0)
            settings = settings with { Samples = measured.Samples, SeqLen = measured.SequenceLength, Seed = measured.Seed };
        if (AdviceSchemes.IsW4(scheme))
        {
            var quant = new Int4QuantOptions { BlockSize = LayerEstimates.BlockSize };
            var search = scheme == AdviceScheme.W4Awq ? new AwqPassOptions { Search = new Awq.AwqOptions { Quantization = quant } } : null;
            return RecipePresets.Awq(keep, includeLmHead, new W4RewriteOptions { Quantization = quant }, search, null, BitsSensitivity.LinearOutput,
                settings, new VerificationSettings(), GateBounds.None);
        }
        bool perToken = scheme == AdviceScheme.W8A8PerToken;
        var target = report.Target;
        var w8a8 = new W8A8Options
        {
            // Per-token scales are computed at run time (the dynamic form); static forms take the target's own form.
            Format = perToken ? W8A8Format.Dynamic : target is { } t ? DeploymentTargets.Format(t) : W8A8Format.Int8,
            UnsignedActivations = !perToken && target is { } u && DeploymentTargets.UnsignedActivations(u),
        };
        // As `smooth` runs it: alpha searched per group, the Mul inserted where a scale cannot be folded.
        var smoothing = scheme == AdviceScheme.W8A8SmoothQuant ? new SmoothQuantOptions { Alpha = null, InsertMul = true } : null;
        return RecipePresets.Smooth(keep, includeLmHead, smoothing, w8a8, settings, new VerificationSettings(), GateBounds.None);
    }
}
