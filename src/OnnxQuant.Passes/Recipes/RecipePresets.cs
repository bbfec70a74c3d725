using OnnxQuant.Analysis;
using OnnxQuant.Passes;
using OnnxQuant.Passes.W8A8;

namespace OnnxQuant.Recipes;

/// <summary>
/// The recipes `smooth` and `awq` amount to (what `--print-recipe` prints): the passes of <see cref="Presets"/> with
/// every linear on the command's scheme except the --exclude patterns, which stay in float.
/// </summary>
public static class RecipePresets
{
    /// <summary>Fold weight chains, smooth (unless <paramref name="smoothing"/> is null), rewrite to W8A8 (unless <paramref name="w8a8"/> is null).</summary>
    public static Recipe Smooth(IEnumerable<string> exclude, bool includeLmHead, SmoothQuantOptions? smoothing, W8A8Options? w8a8,
        CalibrationSettings calibration, VerificationSettings verification, GateBounds gates)
    {
        var passes = new List<PassSpec> { new FoldWeightsSpec(new LinearSelection()) };
        if (smoothing is not null)
            passes.Add(new SmoothQuantSpec(smoothing));
        if (w8a8 is not null)
            passes.Add(new W8A8RewriteSpec(w8a8, new LinearSelection()));
        return new Recipe(passes, Assignment(LinearScheme.W8A8, exclude, includeLmHead), calibration, verification, gates);
    }

    /// <summary>Fold weight chains, search AWQ scales (unless <paramref name="awq"/> is null: round-to-nearest), rewrite to MatMulNBits.</summary>
    public static Recipe Awq(IEnumerable<string> exclude, bool includeLmHead, W4RewriteOptions rewrite, AwqPassOptions? awq,
        CalibrationSettings calibration, VerificationSettings verification, GateBounds gates)
    {
        var passes = new List<PassSpec> { new FoldWeightsSpec(new LinearSelection()) };
        if (awq is not null)
            passes.Add(new AwqSpec(awq));
        passes.Add(new W4RewriteSpec(rewrite));
        return new Recipe(passes, Assignment(LinearScheme.W4, exclude, includeLmHead), calibration, verification, gates);
    }

    private static LinearAssignment Assignment(LinearScheme scheme, IEnumerable<string> exclude, bool includeLmHead) =>
        new(scheme, includeLmHead, exclude.Select(p => new SchemeOverride(p, LinearScheme.Float)).ToList());
}
