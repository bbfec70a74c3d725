using OnnxQuant.Analysis;
using OnnxQuant.IO;

namespace OnnxQuant.Cli;

/// <summary>What `diff --json` writes: the per-linear rows and whole-graph changes; the raw node lists only with --nodes.</summary>
public sealed record DiffReport(ModelFiles Before, ModelFiles After, IReadOnlyList<LinearChange> Linears, IReadOnlyList<string> ComputedProducts,
    GraphChanges Graph, ModelDiff? Nodes);
