using OnnxQuant.Analysis;
using OnnxQuant.Passes.W8A8;

namespace OnnxQuant.Passes;

/// <summary>One pass of a declared pipeline: its name and its options, as data.</summary>
public abstract record PassSpec
{
    /// <summary>The pass's name, as <see cref="IGraphPass.Name"/> reports it.</summary>
    public abstract string Name { get; }

    public abstract IGraphPass Create();

    /// <summary>Whether the pass reads calibration statistics (so the command calibrates before running it).</summary>
    public virtual bool NeedsCalibration => false;

    /// <summary>Whether the pass builds GPTQ's H = XᵀX from sampled rows (so calibration keeps at least K rows per input).</summary>
    public virtual bool NeedsHessianRows => false;

    /// <summary>Whether the pass holds back calibration rows to measure on (so calibration keeps more of them).</summary>
    public virtual bool NeedsHeldOutRows => false;

    /// <summary>
    /// The rewrite whose linears the pass works on ("w8a8", "w4-rewrite"), when it quantizes or prepares some for one:
    /// a recipe's linear scheme is applied only where a pass answers for it.
    /// </summary>
    public virtual string? RewriteOfLinears => null;
}

public sealed record FoldWeightsSpec(LinearSelection Selection) : PassSpec
{
    public override string Name => "fold-weights";

    public override IGraphPass Create() => new FoldWeightChainsPass(Selection);
}

public sealed record SmoothQuantSpec(SmoothQuantOptions Options) : PassSpec
{
    public override string Name => "smoothquant";

    public override IGraphPass Create() => new SmoothQuantPass(Options);

    public override bool NeedsCalibration => true;

    public override string? RewriteOfLinears => "w8a8";
}

public sealed record W8A8RewriteSpec(W8A8Options Options, LinearSelection Selection) : PassSpec
{
    public override string Name => "w8a8";

    public override IGraphPass Create() => new W8A8RewritePass(Options, Selection);

    // Dynamic activations are quantized per call; every other format has static activation scales.
    public override bool NeedsCalibration => Options.Format != W8A8Format.Dynamic;

    public override string? RewriteOfLinears => "w8a8";
}

public sealed record AwqSpec(AwqPassOptions Options) : PassSpec
{
    public override string Name => "awq";

    public override IGraphPass Create() => new AwqPass(Options);

    public override bool NeedsCalibration => true;
}

public sealed record MixedPrecisionSpec(MixedPrecisionOptions Options) : PassSpec
{
    public override string Name => "bits-plan";

    public override IGraphPass Create() => new MixedPrecisionPass(Options);

    public override bool NeedsCalibration => true;

    public override bool NeedsHeldOutRows => true;
}

public sealed record W4RewriteSpec(W4RewriteOptions Options) : PassSpec
{
    public override string Name => "w4-rewrite";

    public override IGraphPass Create() => new W4RewritePass(Options);

    public override bool NeedsCalibration => Options.Rounding == WeightRounding.Gptq;

    public override bool NeedsHessianRows => Options.Rounding == WeightRounding.Gptq;

    public override string? RewriteOfLinears => "w4-rewrite";
}

public sealed record EmbeddingHeadSpec(EmbeddingHeadOptions Options) : PassSpec
{
    public override string Name => "embeddings";

    /// <summary>The included LM head's own bits (null: the head, if included, goes with the other linears).</summary>
    public int? LmHeadBits => Options.Selection.LmHeadBits;

    public override IGraphPass Create() => new EmbeddingHeadPass(Options);
}

/// <summary>
/// A pipeline as data: the passes in order with their options. <see cref="Presets"/> builds the ones the commands run;
/// <see cref="Build"/> turns it into a runnable <see cref="Pipeline"/>.
/// </summary>
public sealed record PipelineSpec(IReadOnlyList<PassSpec> Passes)
{
    public Pipeline Build()
    {
        var pipeline = new Pipeline();
        foreach (var pass in Passes)
            pipeline.Add(pass.Create());
        return pipeline;
    }

    /// <summary>Whether a pass reads calibration statistics (so the command must calibrate before running it).</summary>
    public bool NeedsCalibration => Passes.Any(p => p.NeedsCalibration);

    /// <summary>"fold-weights -> smoothquant -> w8a8".</summary>
    public override string ToString() => string.Join(" -> ", Passes.Select(p => p.Name));
}

/// <summary>The pipelines `smooth` and `awq` run: the one place they are put together.</summary>
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
