using System.Globalization;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Evaluation;
using OnnxQuant.Calibrate.Verification;
using OnnxQuant.Passes;
using OnnxQuant.Quantization;
using Spectre.Console;

namespace OnnxQuant.Cli;

/// <summary>What `awq` tells at the end; also its --json document.</summary>
public sealed record AwqSummary(
    string Model, string Output, string Method, int GroupSize, string Scheme, int AccuracyLevel,
    long BytesBefore, long BytesAfter, int QuantizedLinears, int KeptLinears,
    double? CalibrationSeconds, double SearchSeconds, double RewriteSeconds, double TotalSeconds,
    int Groups, int ScaledGroups, double? SecondsPerMillionParameters,
    [property: System.Text.Json.Serialization.JsonPropertyName("projected_7b_minutes")] double? Projected7BMinutes,
    IReadOnlyList<AwqGroupSummary> GroupDetails, VerificationOutcome? Verification, LatencyReport? Latency)
{
    /// <summary>Every linear kept in floating point, with its reason (QuantizedLinears + KeptLinears = every MatMul/Gemm).</summary>
    public IReadOnlyList<KeptLinear> Kept { get; init; } = [];

    /// <summary>The token embeddings and LM head the embeddings pass handled (empty when it did not run).</summary>
    public IReadOnlyList<QuantizedTable> Tables { get; init; } = [];

    /// <summary>The accuracy gates given and their verdicts (empty when none).</summary>
    public IReadOnlyList<GateResult> Gates { get; init; } = [];

    /// <summary>7B = 32 layers x (4 x 4096^2 + 3 x 4096 x 11008) parameters, searched on 512 rows.</summary>
    public const double Parameters7B = 32.0 * (4.0 * 4096 * 4096 + 3.0 * 4096 * 11008);

    internal static AwqSummary Create(string model, string output, AwqMethod method, Int4QuantOptions quant, int accuracyLevel, long bytesAfter,
        QuantizeOutcome outcome)
    {
        var steps = outcome.Steps;
        var rewrite = steps.Single(s => s.Pass == "w4-rewrite");
        var search = steps.SingleOrDefault(s => s.Pass == "awq");
        var linears = outcome.Analyses.Get<W4Report>("awq summary").Decisions;
        var groups = outcome.Analyses.Find<AwqReport>()?.Decisions.Select(d => new AwqGroupSummary(d.Activation, d.Target, d.Consumers, d.StatusText, d.Loss, d.Ratio, d.RtnLoss,
            d.AwqLoss, d.LossRatio, d.ClippedFraction, d.Seconds)).ToList() ?? [];
        double? perParamRow = search?.Result.Metrics.GetValueOrDefault("seconds_per_parameter_row");
        double? searchedParams = search?.Result.Metrics.GetValueOrDefault("searched_parameters");
        double? searchSeconds = search?.Result.Metrics.GetValueOrDefault("search_seconds");
        var tables = outcome.Analyses.Find<EmbeddingReport>()?.Tables ?? [];
        // A head the embeddings pass quantized counts as quantized, not as kept.
        var ownHeads = tables.Where(t => t.Role == TableRole.LmHead && t.Quantized).Select(t => t.Node).ToHashSet(StringComparer.Ordinal);
        var kept = linears.Where(d => !d.Quantized && !(d.Scope is null && d.Reason == KeepReason.LmHeadOwnBits && ownHeads.Contains(d.Linear)))
            .Select(d => new KeptLinear(d.Scope is null ? d.Linear : $"{d.Scope}/{d.Linear}", d.Reason, d.Detail is null ? KeepReasons.Describe(d.Reason) : $"{KeepReasons.Describe(d.Reason)}: {d.Detail}"))
            .ToList();
        return new AwqSummary(model, output, method.ToString().ToLowerInvariant(), quant.BlockSize, quant.Scheme.ToString().ToLowerInvariant(), accuracyLevel,
            outcome.Before.TotalBytes, bytesAfter, linears.Count(d => d.Quantized) + ownHeads.Count, kept.Count,
            outcome.Calibration.Result?.Elapsed.TotalSeconds, search?.Elapsed.TotalSeconds ?? 0, rewrite.Elapsed.TotalSeconds, outcome.CompileSeconds,
            groups.Count, outcome.Analyses.Find<AwqReport>()?.Decisions.Count(d => d.IsScaled) ?? 0,
            searchedParams > 0 ? searchSeconds / searchedParams * 1e6 : null,
            perParamRow > 0 ? perParamRow * Parameters7B * 512 / 60 : null,
            groups, outcome.Verification, outcome.Latency)
        {
            Kept = kept,
            Tables = tables,
            Gates = outcome.Gates,
        };
    }

    public static void Print(IAnsiConsole console, AwqSummary s)
    {
        var inv = CultureInfo.InvariantCulture;
        string F(double v, string format) => v.ToString(format, inv);
        console.MarkupLineInterpolated($"[bold]{s.Model}[/] -> [bold]{s.Output}[/]: {s.Method}, 4-bit {s.Scheme} blocks of {s.GroupSize}, accuracy_level {s.AccuracyLevel}");
        console.MarkupLineInterpolated($"{s.QuantizedLinears} of {s.QuantizedLinears + s.KeptLinears} MatMul/Gemm to MatMulNBits{KeptSummary.Text(s.Kept)}");
        TableLines.Print(console, s.Tables);
        console.MarkupLineInterpolated($"size {Mb(s.BytesBefore)} -> {Mb(s.BytesAfter)} ({F((double)s.BytesAfter / s.BytesBefore, "P0")})");
        string calibration = s.CalibrationSeconds is { } c ? $"calibration {F(c, "0.0")} s, " : "";
        console.MarkupLineInterpolated($"time: {calibration}search {F(s.SearchSeconds, "0.0")} s, rewrite {F(s.RewriteSeconds, "0.0")} s, total {F(s.TotalSeconds, "0.0")} s");
        if (s.GroupDetails.Count > 0)
        {
            var table = new Table().Border(TableBorder.Simple).Title("AWQ groups (loss: mean squared output error on the recorded rows)");
            foreach (var h in new[] { "activation", "fold", "status", "loss", "r", "awq/rtn", "clipped", "s" })
                table.AddColumn(h);
            foreach (var g in s.GroupDetails)
                table.AddRow(Markup.Escape(Short(g.Activation)), Markup.Escape(Short(g.Target)), Markup.Escape(g.Status), Markup.Escape(g.Loss),
                    F(g.Ratio, "0.00"), F(g.LossRatio, "0.000"), g.ClippedFraction is { } f ? F(f, "P1") : "-", F(g.Seconds, "0.00"));
            console.Write(table);
            console.MarkupLineInterpolated($"{s.ScaledGroups} of {s.Groups} groups scaled");
        }
        if (s.SecondsPerMillionParameters is { } perM && s.Projected7BMinutes is { } projected)
            console.MarkupLineInterpolated($"search speed: {F(perM, "0.00")} s per million parameters; projected for a 7B model (6.48B parameters, 512 rows, same settings) on this machine's {Environment.ProcessorCount} cores: {F(projected, "0.0")} min (scaled from this model's layers; small layers cost more per parameter)");
        if (s.Verification is { Reason: { } why })
            console.MarkupLineInterpolated($"held-out check: did not run: {why}");
        if (s.Verification?.Report is { } v)
        {
            string kind = v.Kind == ModelTask.CausalLm
                ? $"perplexity {Cli.Format.Figure(v.PerplexityOriginal ?? double.NaN, "0.00")} -> {Cli.Format.Figure(v.PerplexityEmitted ?? double.NaN, "0.00")}, top-1 agreement {F(v.Top1Agreement ?? double.NaN, "P2")}"
                : $"embedding cosine mean {F(v.MeanCosine ?? double.NaN, "0.00000")}, min {F(v.MinCosine ?? double.NaN, "0.00000")}";
            console.MarkupLineInterpolated($"held-out ({v.Data}, {v.Samples} samples, {v.Tokens} tokens, {v.Device}): relative error of '{v.Output}' {F(v.RelativeError, "0.0000")}, {kind}");
        }
        if (s.Latency is { } t)
            console.MarkupLineInterpolated($"latency ({t.Tokens} tokens, {t.Device}): {F(t.OriginalMs, "0.0")} ms -> {F(t.EmittedMs, "0.0")} ms ({F(t.Speedup, "0.00")}x)");
    }

    private static string Mb(long bytes) => (bytes / 1048576.0).ToString("0.0", CultureInfo.InvariantCulture) + " MB";

    private static string Short(string name) => name.Length <= 44 ? name : "…" + name[^43..];
}

public sealed record AwqGroupSummary(string Activation, string Target, IReadOnlyList<string> Consumers, string Status, string Loss, float Ratio,
    double RtnLoss, double AwqLoss, double LossRatio, double? ClippedFraction, double Seconds);
