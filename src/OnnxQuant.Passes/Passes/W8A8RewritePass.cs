using System.Globalization;
using OnnxQuant.Analysis;
using OnnxQuant.IO;
using OnnxQuant.Passes.W8A8;

namespace OnnxQuant.Passes;

/// <summary>What the rewrite did with one linear.</summary>
public sealed record W8A8Decision(string Linear, string Activation, int K, int N, string Status, float? ActivationScale, bool SmoothingAbsorbed)
{
    /// <summary>Input channels computed in floating point beside the int8 product.</summary>
    public int FloatChannels { get; init; }
}

/// <summary>
/// Replaces every selected constant-weight MatMul/Gemm by its W8A8 form (<see cref="W8A8Format"/>): weights symmetric
/// int8 per output channel (zero point 0), activations symmetric int8 with a static per-tensor scale from calibration or
/// per-token scales computed at run time. Linears that read the same activation share one quantizer. fp16/bf16 models
/// keep their type at the linear's output; integer accumulation is rescaled in fp32 (an int32 sum overflows fp16).
/// </summary>
public sealed class W8A8RewritePass : IGraphPass
{
    private readonly ActivationRanges _ranges;
    private readonly W8A8Options _options;
    private readonly LinearSelection _selection;
    private readonly List<W8A8Decision> _decisions = new();

    public W8A8RewritePass(ActivationRanges ranges, W8A8Options options, LinearSelection selection)
    {
        _ranges = ranges;
        _options = options;
        _selection = selection;
    }

    public string Name => "w8a8";

    public IReadOnlyList<W8A8Decision> Decisions => _decisions;

    public PassResult Run(OnnxModel model, PassContext context)
    {
        var graph = model.Graph;
        long opset = model.OpsetVersion("") ?? 1;
        long needed = _options.Format == W8A8Format.Dynamic ? 11 : 10;
        if (opset < needed)
            throw new OnnxQuantException(model.SourcePath, $"uses ONNX opset {opset}; W8A8 format {_options.Format.ToString().ToLowerInvariant()} needs opset {needed} or later (re-export the model with a newer opset)", ExitCode.Unsupported);
        _decisions.Clear();
        var emitter = new GraphEmitter(graph, opset);
        var linears = LinearNode.FindAll(graph);
        var byActivation = linears.GroupBy(l => l.Activation, StringComparer.Ordinal).ToList();
        int done = 0;
        foreach (var group in byActivation)
        {
            context.Cancellation.ThrowIfCancellationRequested();
            context.Progress?.Report(new PassProgress(Name, done, linears.Count, group.Key));
            var selected = new List<LinearNode>();
            foreach (var linear in group)
            {
                string? reason = _selection.ExclusionReason(graph, linear)
                    ?? (linear.WeightType is not (Onnx.TensorProto.Types.DataType.Float or Onnx.TensorProto.Types.DataType.Float16 or Onnx.TensorProto.Types.DataType.Bfloat16) ? "weight type" : null)
                    ?? (_options.Format != W8A8Format.Dynamic && _ranges.TensorAbsMax(group.Key) is null ? "no calibration statistics" : null);
                if (reason is null)
                    selected.Add(linear);
                else
                    _decisions.Add(new W8A8Decision(linear.Name, group.Key, linear.K, linear.N, $"kept: {reason}", null, false));
            }
            done += group.Count();
            if (selected.Count == 0)
                continue;
            var quantized = ActivationFront.Emit(emitter, group.Key, selected[0].WeightType, _options.Format, _ranges.TensorAbsMax(group.Key),
                _options.Format is W8A8Format.Int8 or W8A8Format.QLinear && opset >= 11 ? _ranges.FloatChannels(group.Key) : [], _options.UnsignedActivations,
                _options.AbsorbSmoothingMul);
            foreach (var linear in selected)
            {
                LinearBack.Emit(emitter, linear, quantized, _options, _ranges);
                _decisions.Add(new W8A8Decision(linear.Name, group.Key, linear.K, linear.N, "quantized", quantized.StaticScale, quantized.AbsorbedMul is not null)
                {
                    FloatChannels = quantized.Float?.Channels.Count ?? 0,
                });
            }
        }
        graph.RemoveDeadNodes();
        graph.SortTopologically();
        context.Progress?.Report(new PassProgress(Name, linears.Count, linears.Count));
        int count = _decisions.Count(d => d.Status == "quantized");
        return new PassResult(count > 0, _decisions.Select(ToRow).ToList())
        {
            Metrics = new Dictionary<string, double> { ["quantized"] = count, ["kept"] = _decisions.Count - count },
        };
    }

    private PassReportRow ToRow(W8A8Decision d) => new(d.Linear, new Dictionary<string, string>
    {
        ["activation"] = d.Activation,
        ["shape"] = $"{d.K}x{d.N}",
        ["status"] = d.Status,
        ["format"] = d.Status == "quantized" ? _options.Format.ToString().ToLowerInvariant() : "-",
        ["activation scale"] = d.ActivationScale?.ToString("G4", CultureInfo.InvariantCulture) ?? (d.Status == "quantized" ? "per token" : "-"),
        ["smoothing"] = d.SmoothingAbsorbed ? "absorbed" : "-",
    });
}
