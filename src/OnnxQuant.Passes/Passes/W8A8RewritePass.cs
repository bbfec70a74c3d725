using System.Globalization;
using OnnxQuant.Analysis;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Passes.W8A8;

namespace OnnxQuant.Passes;

/// <summary>What the rewrite did with one MatMul/Gemm: quantized (<see cref="KeepReason.None"/>) or kept, and why.</summary>
public sealed record W8A8Decision(string Linear, string? Scope, string Activation, int K, int N, KeepReason Reason, string? Detail,
    float? ActivationScale, bool SmoothingAbsorbed)
{
    /// <summary>Input channels computed in floating point beside the int8 product.</summary>
    public int FloatChannels { get; init; }

    public bool Quantized => Reason == KeepReason.None;

    /// <summary>"quantized", or "kept: " and the reason.</summary>
    public string Status => Quantized ? "quantized" : "kept: " + (Detail is null ? KeepReasons.Describe(Reason) : $"{KeepReasons.Describe(Reason)}: {Detail}");
}

/// <summary>The W8A8 rewrite's decision on every MatMul/Gemm of the model (left in the pipeline's <see cref="AnalysisStore"/>).</summary>
public sealed record W8A8Report(IReadOnlyList<W8A8Decision> Decisions);

/// <summary>
/// Replaces every selected constant-weight MatMul/Gemm by its W8A8 form (<see cref="W8A8Format"/>): weights symmetric
/// int8 per output channel (zero point 0), activations symmetric int8 with a static per-tensor scale from calibration or
/// per-token scales computed at run time. Linears that read the same activation share one quantizer. fp16/bf16 models
/// keep their type at the linear's output; integer accumulation is rescaled in fp32 (an int32 sum overflows fp16).
/// Linears in If/Loop bodies are rewritten too (a static scale needs their input to be a value calibration recorded).
/// Reads <see cref="ActivationRanges"/> from the pipeline's analyses (not needed for per-token activations).
/// </summary>
public sealed class W8A8RewritePass(W8A8Options options, LinearSelection selection) : IGraphPass
{
    public string Name => "w8a8";

    public PassResult Run(OnnxModel model, PassContext context)
    {
        long opset = model.OpsetVersion("") ?? 1;
        long needed = options.Format == W8A8Format.Dynamic ? 11 : 10;
        if (opset < needed)
            throw new OnnxQuantException(model.SourcePath, $"uses ONNX opset {opset}; W8A8 format {options.Format.ToString().ToLowerInvariant()} needs opset {needed} or later (re-export the model with a newer opset)", ExitCode.Unsupported);
        var ranges = options.Format == W8A8Format.Dynamic
            ? context.Analyses.Find<ActivationRanges>() ?? new ActivationRanges()
            : context.Analyses.Get<ActivationRanges>(Name);
        var decisions = new List<W8A8Decision>();
        SubgraphBodies.RewriteAll(model.Graph, null, (graph, scope) => RewriteGraph(graph, scope, opset, ranges, decisions, context));
        context.Analyses.Set(new W8A8Report(decisions));
        int count = decisions.Count(d => d.Quantized);
        return new PassResult(count > 0, decisions.Select(ToRow).ToList())
        {
            Metrics = new Dictionary<string, double> { ["quantized"] = count, ["kept"] = decisions.Count - count },
        };
    }

    private bool RewriteGraph(Graph graph, string? scope, long opset, ActivationRanges ranges, List<W8A8Decision> decisions, PassContext context)
    {
        var candidates = LinearAnalysis.ClassifyGraph(graph, scope, selection);
        if (scope is null)
            KeptWeightCopies.Start(graph, context, candidates);
        foreach (var kept in candidates.Where(c => !c.Quantizable))
            decisions.Add(Kept(kept, kept.Reason, kept.Detail));
        var emitter = new GraphEmitter(graph, opset);
        var byActivation = candidates.Where(c => c.Quantizable).GroupBy(c => c.Activation, StringComparer.Ordinal).ToList();
        int done = 0, total = candidates.Count, rewritten = 0;
        foreach (var group in byActivation)
        {
            context.Cancellation.ThrowIfCancellationRequested();
            context.Progress?.Report(new PassProgress(Name, done, total, group.Key));
            done += group.Count();
            if (options.Format != W8A8Format.Dynamic && ranges.TensorAbsMax(group.Key) is null)
            {
                foreach (var c in group)
                    decisions.Add(Kept(c, c.ActivationCalibrated ? KeepReason.NoStatistics : KeepReason.SubgraphNotCalibrated, null));
                continue;
            }
            var linears = group.Select(c => c.RequireLinear(graph)).ToList();
            string scheme = "w8a8-" + options.Format.ToString().ToLowerInvariant();
            emitter.Provenance = new Provenance(scheme, ProvenanceRole.ActivationQuantizer, group.Select(c => c.Name).ToList());
            var quantized = ActivationFront.Emit(emitter, group.Key, linears[0].WeightType, options.Format, ranges.TensorAbsMax(group.Key),
                options.Format is W8A8Format.Int8 or W8A8Format.QLinear && opset >= 11 ? ranges.FloatChannels(group.Key) : [], options.UnsignedActivations,
                options.AbsorbSmoothingMul);
            foreach (var (linear, candidate) in linears.Zip(group))
            {
                emitter.Provenance = new Provenance(scheme, ProvenanceRole.Linear, [candidate.Name]);
                LinearBack.Emit(emitter, linear, quantized, options, ranges);
                decisions.Add(new W8A8Decision(candidate.Name, scope, group.Key, linear.K, linear.N, KeepReason.None, null, quantized.StaticScale,
                    quantized.AbsorbedMul is not null) { FloatChannels = quantized.Float?.Channels.Count ?? 0 });
                rewritten++;
            }
        }
        if (scope is null)
            context.Progress?.Report(new PassProgress(Name, total, total));
        if (rewritten == 0)
            return false;
        graph.RemoveDeadNodes();
        graph.SortTopologically();
        return true;
    }

    private static W8A8Decision Kept(LinearCandidate c, KeepReason reason, string? detail) =>
        new(c.Name, c.Scope, c.Activation, c.K, c.N, reason, detail, null, false);

    private PassReportRow ToRow(W8A8Decision d) => new(d.Scope is null ? d.Linear : $"{d.Scope}/{d.Linear}", new Dictionary<string, string>
    {
        ["activation"] = d.Activation,
        ["shape"] = $"{d.K}x{d.N}",
        ["status"] = d.Status,
        ["format"] = d.Quantized ? options.Format.ToString().ToLowerInvariant() : "-",
        ["activation scale"] = d.ActivationScale?.ToString("G4", CultureInfo.InvariantCulture) ?? (d.Quantized ? "per token" : "-"),
        ["smoothing"] = d.SmoothingAbsorbed ? "absorbed" : "-",
    });
}
