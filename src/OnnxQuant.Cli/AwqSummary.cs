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

    /// <summary>Every MatMul/Gemm with its bits (4, 8, 32 for float by the budget, 0 kept for another reason) and rounding.</summary>
    public IReadOnlyList<LinearBits> Linears { get; init; } = [];

    /// <summary>Seconds of GPTQ (H, its factor and the rounding) inside the rewrite; 0 without GPTQ.</summary>
    public double GptqSeconds { get; init; }

    /// <summary>The mixed precision plan's budget and outcome; null without --bits-budget / --max-size.</summary>
    public MixedPrecisionSummary? MixedPrecision { get; init; }

    /// <summary>The token embeddings and LM head the embeddings pass handled (empty when it did not run).</summary>
    public IReadOnlyList<QuantizedTable> Tables { get; init; } = [];

    /// <summary>The accuracy gates given and their verdicts (empty when none).</summary>
    public IReadOnlyList<GateResult> Gates { get; init; } = [];

    /// <summary>7B = 32 layers x (4 x 4096^2 + 3 x 4096 x 11008) parameters, searched on 512 rows.</summary>
    public const double Parameters7B = 32.0 * (4.0 * 4096 * 4096 + 3.0 * 4096 * 11008);

    internal static AwqSummary Create(string model, string output, AwqMethod method, Int4QuantOptions quant, int accuracyLevel, long bytesAfter,
        QuantizeOutcome outcome, SizeBudget? budget = null)
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
        var plan = outcome.Analyses.Find<BitsPlan>();
        var planStep = steps.SingleOrDefault(s => s.Pass == "bits-plan");
        var choices = plan?.Choices.ToDictionary(c => c.Linear, StringComparer.Ordinal);
        var bits = linears.Select(d =>
        {
            var c = d.Scope is null ? choices?.GetValueOrDefault(d.Linear) : null;
            return new LinearBits(d.Scope is null ? d.Linear : $"{d.Scope}/{d.Linear}", d.K, d.N, d.Bits, d.BlockSize,
                d.Quantized ? (d.Rounding == WeightRounding.Gptq ? "gptq" : "rtn") : "-", d.BytesAfter,
                c?.Finer.FirstOrDefault(f => f.BlockSize == d.BlockSize)?.Error ?? c?.Error4, c?.Error8)
                { Damp = d.Dampening is { } damp ? Math.Round(damp, 6) : null };
        }).ToList();
        var mixed = plan is null || planStep is null ? null : new MixedPrecisionSummary(
            budget switch { SizeBudget.AverageBits a => $"--bits-budget {a.Bits.ToString(CultureInfo.InvariantCulture)}", SizeBudget.MaxBytes m => $"--max-size {m.Bytes} bytes", _ => "-" },
            plan.BudgetBytes, plan.PlannedBytes, plan.AverageBits, plan.Bits.Values.Count(b => b == 4), plan.Bits.Values.Count(b => b == 8),
            plan.Bits.Values.Count(b => b == BitsPlan.Float), plan.BlockSizes.Count, planStep.Elapsed.TotalSeconds,
            planStep.Result.Metrics.GetValueOrDefault("model_output_sensitivity") == 1 ? "model" : "linear");
        return new AwqSummary(model, output, method.Word(), quant.BlockSize, quant.Scheme.ToString().ToLowerInvariant(), accuracyLevel,
            outcome.Before.TotalBytes, bytesAfter, linears.Count(d => d.Quantized) + ownHeads.Count, kept.Count,
            outcome.Calibration.Result?.Elapsed.TotalSeconds, search?.Elapsed.TotalSeconds ?? 0, rewrite.Elapsed.TotalSeconds, outcome.CompileSeconds,
            groups.Count, outcome.Analyses.Find<AwqReport>()?.Decisions.Count(d => d.IsScaled) ?? 0,
            searchedParams > 0 ? searchSeconds / searchedParams * 1e6 : null,
            perParamRow > 0 ? perParamRow * Parameters7B * 512 / 60 : null,
            groups, outcome.Verification, outcome.Latency)
        {
            Kept = kept,
            Linears = bits,
            GptqSeconds = rewrite.Result.Metrics.GetValueOrDefault("gptq_seconds"),
            MixedPrecision = mixed,
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
        if (s.GptqSeconds > 0)
        {
            var damps = s.Linears.Where(l => l.Damp is not null).GroupBy(l => l.Damp!.Value).OrderBy(g => g.Key)
                .Select(g => $"{F(g.Key, "0.###")} x{g.Count()}");
            console.MarkupLineInterpolated($"GPTQ: {s.Linears.Count(l => l.Rounding == "gptq")} linears in {F(s.GptqSeconds, "0.0")} s (H, its factor and the rounding); dampening {string.Join(", ", damps)}");
        }
        if (s.MixedPrecision is { } mp)
        {
            console.MarkupLineInterpolated($"mixed precision ({mp.Budget}): {mp.FourBit} at 4 bits ({mp.FinerBlocks} with smaller blocks), {mp.EightBit} at 8 bits, {mp.Float} float; weights {mp.PlannedBytes} of {mp.BudgetBytes} budget bytes, {F(mp.AverageBits, "0.000")} average bits; planned in {F(mp.Seconds, "0.0")} s");
            var bitsTable = new Table().Border(TableBorder.Simple).Title(mp.Sensitivity == "model"
                ? "bits per linear (error: relative error of the model's output with that linear alone rounded)"
                : "bits per linear (error: relative output error on held-out rows)");
            foreach (var h in new[] { "linear", "shape", "bits", "block", "rounding", "error at 4", "error at 8", "bytes" })
                bitsTable.AddColumn(h);
            foreach (var l in s.Linears.Where(l => l.Bits != 0))
                bitsTable.AddRow(Markup.Escape(Short(l.Linear)), $"{l.K}x{l.N}", l.Bits == BitsPlan.Float ? "float" : l.Bits.ToString(inv),
                    l.BlockSize == 0 ? "-" : l.BlockSize.ToString(inv), l.Rounding,
                    l.Error4 is { } e4 ? F(e4, "0.00000") : "-", l.Error8 is { } e8 ? F(e8, "0.0000000") : "-", l.Bytes.ToString(inv));
            console.Write(bitsTable);
        }
        else if (s.Linears.Any(l => l.Bits != 0))
            console.MarkupLineInterpolated($"bits: every quantized linear at 4 ({(s.Linears.Any(l => l.Rounding == "gptq") ? "GPTQ" : "round-to-nearest")} rounding; --json lists them)");
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

/// <summary>
/// One MatMul/Gemm's bits in the summary: 4 or 8 (MatMulNBits), 32 (float by the budget), 0 (kept for another reason);
/// its block size (0 when not quantized); the plan's errors at 4 bits (with its own block size) and at 8.
/// </summary>
public sealed record LinearBits(string Linear, int K, int N, int Bits, int BlockSize, string Rounding, long Bytes, double? Error4, double? Error8)
{
    /// <summary>GPTQ's dampening for this linear (chosen per linear with --damp auto); null without GPTQ.</summary>
    public double? Damp { get; init; }
}

/// <summary>The size budget, the weight bytes it allowed and used, and how many linears got each width.</summary>
/// <param name="Sensitivity">"linear" or "model": what the errors were measured on (--sensitivity).</param>
public sealed record MixedPrecisionSummary(string Budget, long BudgetBytes, long PlannedBytes, double AverageBits, int FourBit, int EightBit, int Float, int FinerBlocks, double Seconds,
    string Sensitivity);

public sealed record AwqGroupSummary(string Activation, string Target, IReadOnlyList<string> Consumers, string Status, string Loss, float Ratio,
    double RtnLoss, double AwqLoss, double LossRatio, double? ClippedFraction, double Seconds);
