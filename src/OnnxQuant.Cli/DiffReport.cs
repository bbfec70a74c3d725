using OnnxQuant.Review;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Diff;
using OnnxQuant.IO;

namespace OnnxQuant.Cli;

/// <summary>
/// What `diff --json` writes: the per-linear rows and whole-graph changes; the raw node lists only with --nodes; the
/// per-linear errors (worst first) and the --exclude option for the worst only with --numeric.
/// </summary>
public sealed record DiffReport(ModelFiles Before, ModelFiles After, IReadOnlyList<LinearChange> Linears, IReadOnlyList<string> ComputedProducts,
    GraphChanges Graph, ModelDiff? Nodes, NumericDiffReport? Numeric, string? KeepWorstInFloat)
{
    /// <summary>Token embeddings and their form after (GatherBlockQuantized bits, block, bytes, a shared head).</summary>
    public IReadOnlyList<EmbeddingChange> Embeddings { get; init; } = [];

    /// <summary>The onnxquant.* provenance entries of both models side by side (docs/recipes.md).</summary>
    public IReadOnlyList<OnnxQuant.Recipes.ProvenanceChange> Provenance { get; init; } = [];
}
