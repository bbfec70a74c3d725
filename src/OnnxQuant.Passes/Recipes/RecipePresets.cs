using OnnxQuant.Analysis;
using OnnxQuant.Passes;
using OnnxQuant.Passes.W8A8;

namespace OnnxQuant.Recipes;

/// <summary>
/// The recipes `smooth` and `awq` amount to (what `--print-recipe` prints): the passes of <see cref="Presets"/> with
/// every linear on the command's scheme except the --exclude patterns, which stay in float; with --quantize-embeddings or
/// an included head at its own bits (awq's --lm-head-bits), the embeddings pass last.
/// </summary>
public static class RecipePresets
{
    /// <summary>Fold weight chains, smooth (unless <paramref name="smoothing"/> is null), rewrite to W8A8 (unless <paramref name="w8a8"/> is null).</summary>
    public static Recipe Smooth(IEnumerable<string> exclude, bool includeLmHead, SmoothQuantOptions? smoothing, W8A8Options? w8a8,
        CalibrationSettings calibration, VerificationSettings verification, GateBounds gates, EmbeddingHeadSpec? tables = null)
    {
        var passes = new List<PassSpec> { new FoldWeightsSpec(new LinearSelection()) };
        if (smoothing is not null)
            passes.Add(new SmoothQuantSpec(smoothing));
        if (w8a8 is not null)
            passes.Add(new W8A8RewriteSpec(w8a8, new LinearSelection()));
        if (tables is not null)
            passes.Add(tables);
        return new Recipe(passes, Assignment(LinearScheme.W8A8, exclude, includeLmHead), calibration, verification, gates);
    }

    /// <summary>
    /// Fold weight chains, search AWQ scales (unless <paramref name="awq"/> is null), plan bits per linear under
    /// <paramref name="budget"/> (mixed precision, unless null), rewrite to MatMulNBits with the rewrite's rounding (RTN or GPTQ), then the
    /// embeddings and head pass (<paramref name="tables"/>, unless null).
    /// </summary>
    public static Recipe Awq(IEnumerable<string> exclude, bool includeLmHead, W4RewriteOptions rewrite, AwqPassOptions? awq, SizeBudget? budget,
        BitsSensitivity sensitivity, CalibrationSettings calibration, VerificationSettings verification, GateBounds gates, EmbeddingHeadSpec? tables = null)
    {
        var passes = new List<PassSpec> { new FoldWeightsSpec(new LinearSelection()) };
        if (awq is not null)
            passes.Add(new AwqSpec(awq));
        if (budget is not null)
            passes.Add(new MixedPrecisionSpec(new MixedPrecisionOptions(budget, rewrite) { Sensitivity = sensitivity }));
        passes.Add(new W4RewriteSpec(rewrite));
        if (tables is not null)
            passes.Add(tables);
        return new Recipe(passes, Assignment(LinearScheme.W4, exclude, includeLmHead), calibration, verification, gates);
    }

    private static LinearAssignment Assignment(LinearScheme scheme, IEnumerable<string> exclude, bool includeLmHead) =>
        new(scheme, includeLmHead, exclude.Select(p => new SchemeOverride(p, LinearScheme.Float)).ToList());

    /// <summary>
    /// The embeddings pass of a recipe (docs/recipes.md, "embeddings"): token embeddings at <paramref name="bits"/> and an
    /// included LM head at <paramref name="lmHeadBits"/> (null: the head goes with the other linears), or null when both
    /// are null and the pass would do nothing.
    /// </summary>
    public static EmbeddingHeadSpec? Embeddings(int? bits, int? lmHeadBits, int blockSize = 128, bool symmetric = false, int accuracyLevel = 0) =>
        bits is null && lmHeadBits is null ? null : new EmbeddingHeadSpec(new EmbeddingHeadOptions
        {
            EmbeddingBits = bits,
            // A placeholder like the other passes' selections: Recipe.Pipeline gives it the linears; it carries the head's bits.
            Selection = new LinearSelection(includeLmHead: lmHeadBits is not null, lmHeadBits: lmHeadBits),
            BlockSize = blockSize,
            Symmetric = symmetric,
            AccuracyLevel = accuracyLevel,
        });
}
