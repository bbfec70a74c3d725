using OnnxQuant.Analysis;
using OnnxQuant.Passes;
using OnnxQuant.Passes.W8A8;

namespace OnnxQuant.Tests;

/// <summary>
/// Pipelines built straight from pass options, for tests that run passes without a recipe. The commands build theirs
/// through RecipePresets and Recipe.Pipeline.
/// </summary>
public static class Presets
{
    /// <summary>SmoothQuant W8A8: fold weight chains, smooth (unless <paramref name="smoothing"/> is null: naive W8A8), then rewrite (unless <paramref name="w8a8"/> is null: smoothed float model).</summary>
    public static PipelineSpec Smooth(LinearSelection selection, SmoothQuantOptions? smoothing, W8A8Options? w8a8, EmbeddingHeadOptions? tables = null)
    {
        var passes = new List<PassSpec> { new FoldWeightsSpec(selection) };
        if (smoothing is not null)
            passes.Add(new SmoothQuantSpec(smoothing with { Selection = selection, FakeQuant = w8a8?.FakeQuant ?? smoothing.FakeQuant }));
        if (w8a8 is not null)
            passes.Add(new W8A8RewriteSpec(w8a8, selection));
        AddTables(passes, tables, selection);
        return new PipelineSpec(passes);
    }

    /// <summary>
    /// W4A16: fold weight chains, search AWQ scales (unless <paramref name="awq"/> is null), plan bits per linear under
    /// <paramref name="budget"/> (mixed precision, when given), rewrite to MatMulNBits rounding as <paramref name="rewrite"/>
    /// says (round-to-nearest or GPTQ: AWQ + GPTQ is AWQ's scales folded first, then GPTQ's rounding), then the
    /// embeddings and head pass when <paramref name="tables"/> asks for one.
    /// </summary>
    public static PipelineSpec Awq(W4RewriteOptions rewrite, AwqPassOptions? awq, SizeBudget? budget = null, EmbeddingHeadOptions? tables = null)
    {
        var passes = new List<PassSpec> { new FoldWeightsSpec(rewrite.Selection) };
        if (awq is not null)
            passes.Add(new AwqSpec(awq with { Selection = rewrite.Selection, Search = awq.Search with { Quantization = rewrite.Quantization } }));
        if (budget is not null)
            passes.Add(new MixedPrecisionSpec(new MixedPrecisionOptions(budget, rewrite)));
        passes.Add(new W4RewriteSpec(rewrite));
        AddTables(passes, tables, rewrite.Selection);
        return new PipelineSpec(passes);
    }

    // The embeddings and head pass runs last: the linears' passes have left the head (LmHeadOwnBits) and its tie alone.
    private static void AddTables(List<PassSpec> passes, EmbeddingHeadOptions? tables, LinearSelection selection)
    {
        if (tables is not null && (tables.EmbeddingBits is not null || selection.LmHeadBits is not null))
            passes.Add(new EmbeddingHeadSpec(tables with { Selection = selection }));
    }
}
