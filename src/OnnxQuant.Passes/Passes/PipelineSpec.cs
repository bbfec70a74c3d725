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

    /// <summary>Whether the pass runs the whole model on token windows (so its calibration data cannot be arrays).</summary>
    public virtual bool ProbesModelOutput => false;

    /// <summary>Whether the pass evaluates decoder blocks on their calibrated inputs (so the command gives it a block evaluator).</summary>
    public virtual bool NeedsBlockInputs => false;

    /// <summary>Whether the pass replaces linears by quantized operators (a rewrite) rather than preparing them (a search).</summary>
    public virtual bool Rewrites => false;

    /// <summary>The bits the pass gives an included LM head of its own (the embeddings pass' lmHeadBits), or null.</summary>
    public virtual int? OwnLmHeadBits => null;

    /// <summary>Whether the pass leaves a choice to the model's size (bits-plan's "auto" sensitivity).</summary>
    public virtual bool ChoosesByModelSize => false;

    /// <summary>The pass with its size-dependent choices made for a model of <paramref name="linears"/> linears and <paramref name="parameters"/> weights.</summary>
    public virtual PassSpec ForModelSize(int linears, long parameters) => this;

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

    public override bool Rewrites => true;

    // Dynamic activations are quantized per call; every other format has static activation scales.
    public override bool NeedsCalibration => Options.Format != W8A8Format.Dynamic;

    public override string? RewriteOfLinears => "w8a8";
}

public sealed record AwqSpec(AwqPassOptions Options) : PassSpec
{
    public override string Name => "awq";

    public override IGraphPass Create() => new AwqPass(Options);

    public override bool NeedsCalibration => true;

    public override bool NeedsBlockInputs => Options.BlockLoss;
}

public sealed record MixedPrecisionSpec(MixedPrecisionOptions Options) : PassSpec
{
    public override string Name => "bits-plan";

    public override IGraphPass Create() => new MixedPrecisionPass(Options);

    public override bool NeedsCalibration => true;

    public override bool ProbesModelOutput => Options.Sensitivity == BitsSensitivity.ModelOutput;

    public override bool NeedsHeldOutRows => true;

    public override bool ChoosesByModelSize => Options.Sensitivity == BitsSensitivity.Auto;

    public override PassSpec ForModelSize(int linears, long parameters) => ChoosesByModelSize
        ? new MixedPrecisionSpec(Options with { Sensitivity = BitsSensitivities.Resolve(BitsSensitivity.Auto, linears, parameters) })
        : this;
}

public sealed record W4RewriteSpec(W4RewriteOptions Options) : PassSpec
{
    public override string Name => "w4-rewrite";

    public override IGraphPass Create() => new W4RewritePass(Options);

    public override bool Rewrites => true;

    public override bool NeedsCalibration => Options.Rounding == WeightRounding.Gptq;

    public override bool NeedsHessianRows => Options.Rounding == WeightRounding.Gptq;

    public override string? RewriteOfLinears => "w4-rewrite";
}

public sealed record EmbeddingHeadSpec(EmbeddingHeadOptions Options) : PassSpec
{
    public override string Name => "embeddings";

    /// <summary>The included LM head's own bits (null: the head, if included, goes with the other linears).</summary>
    public int? LmHeadBits => Options.Selection.LmHeadBits;

    public override int? OwnLmHeadBits => LmHeadBits;

    public override IGraphPass Create() => new EmbeddingHeadPass(Options);
}

/// <summary>
/// A pipeline as data: the passes in order with their options (a recipe's <see cref="Recipes.Recipe.Pipeline"/> makes
/// the ones the commands run); <see cref="Build"/> turns it into a runnable <see cref="Pipeline"/>.
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
