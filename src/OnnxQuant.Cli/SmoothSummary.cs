using System.Globalization;
using OnnxQuant.Calibrate.Verification;
using OnnxQuant.Passes;
using OnnxQuant.Passes.W8A8;
using OnnxQuant.Smoothing;
using Spectre.Console;

namespace OnnxQuant.Cli;

/// <summary>What `smooth` tells at the end; also its --json document.</summary>
public sealed record SmoothSummary(
    string Model, string Output, string? Format, bool ReducedRange, bool Uint8Activations, string Alpha, string CalibrationData, int CalibrationSamples,
    int CalibrationSequenceLength, double? CalibrationSeconds, double CompileSeconds, long InputBytes, long OutputBytes,
    IReadOnlyList<SmoothGroupSummary> Groups, int LinearsQuantized, IReadOnlyList<KeptLinear> LinearsKept,
    VerificationOutcome? Verification, LatencyReport? Latency)
{
    /// <summary>Every MatMul/Gemm of the input model: quantized + kept add up to it when the rewrite ran.</summary>
    public int Linears { get; init; }

    /// <summary>--float-outliers: channels whose calibrated max |x| exceeds it are in float (each group's FloatChannels); null when off.</summary>
    public float? FloatOutlierThreshold { get; init; }

    /// <summary>The token embeddings the embeddings pass handled (--quantize-embeddings; empty when it did not run).</summary>
    public IReadOnlyList<QuantizedTable> Tables { get; init; } = [];

    /// <summary>The accuracy gates given and their verdicts (empty when none).</summary>
    public IReadOnlyList<GateResult> Gates { get; init; } = [];

    internal static SmoothSummary Create(string model, string output, W8A8Options? w8a8, string alpha, QuantizeOutcome outcome)
    {
        var stats = outcome.Calibration.Stats;
        var decisions = outcome.Analyses.Find<SmoothingReport>()?.Decisions ?? [];
        var linears = outcome.Analyses.Find<W8A8Report>()?.Decisions ?? [];
        var groups = decisions.Select(d => new SmoothGroupSummary(d.Activation, d.ProducerKind.ToString(), d.Consumers, d.StatusText,
            d.Applied ? d.Target : null, d.FoldKind.ToString(), d.Alpha, d.RatioBefore, d.RatioAfter, d.FloatChannels) { Code = d.Status, Fold = d.FoldKind }).ToList();
        var kept = linears.Where(l => !l.Quantized).Select(l => new KeptLinear(l.Scope is null ? l.Linear : $"{l.Scope}/{l.Linear}", l.Reason, l.Status)).ToList();
        return new SmoothSummary(model, output, w8a8?.Format.ToString().ToLowerInvariant(), w8a8?.ReducedRangeWeights ?? false,
            w8a8?.UnsignedActivations ?? false, alpha,
            stats.Info.Data, stats.Info.Samples, stats.Info.SequenceLength, outcome.Calibration.Result?.Elapsed.TotalSeconds, outcome.CompileSeconds,
            FileBytes(model), FileBytes(output), groups, linears.Count(l => l.Quantized), kept, outcome.Verification, outcome.Latency)
        {
            Linears = outcome.Linears.Count,
            FloatOutlierThreshold = w8a8?.FloatOutlierThreshold,
            Tables = outcome.Analyses.Find<EmbeddingReport>()?.Tables ?? [],
            Gates = outcome.Gates,
        };
    }

    // The model file plus its external data files.
    private static long FileBytes(string path)
    {
        var file = new FileInfo(path);
        if (!file.Exists)
            return 0;
        long total = file.Length;
        string data = path + ".data";
        if (File.Exists(data))
            total += new FileInfo(data).Length;
        return total;
    }

    // "/model/layers.3/self_attn/q_proj/MatMul" -> "q_proj"; names without a path stay as they are. A body's linear keeps
    // the body it sits in: ".../If/then_branch//model/layers.3/self_attn/q_proj/MatMul" -> "q_proj (then_branch)".
    private static string ShortNode(string name)
    {
        var parts = name.Split('/', StringSplitOptions.RemoveEmptyEntries);
        string body = parts.LastOrDefault(p => p.EndsWith("_branch", StringComparison.Ordinal) || p == "body") is { } b ? $" ({b})" : "";
        if (parts.Length >= 2 && parts[^1] is "MatMul" or "Gemm")
            return parts[^2] + body;
        return (parts.Length > 0 ? parts[^1] : name) + body;
    }

    private static string Shorten(string text, int max) => text.Length <= max ? text : "…" + text[^(max - 1)..];

    private static string FoldText(SmoothGroupSummary g) => (g.Code, g.Fold) switch
    {
        (SmoothingStatus.Folded, FoldKind.NormGamma) => g.Target!.Contains("+beta", StringComparison.Ordinal) ? "folded: gamma+beta" : "folded: gamma",
        (SmoothingStatus.Folded, FoldKind.LinearColumns) => "folded: columns of " + FoldSource(g.Target!),
        (SmoothingStatus.Inserted, _) => "Mul(1/s)",
        _ => g.Status,
    };

    // "'/model/layers.0/mlp/up_proj/MatMul' (MatMul) columns via gated Mul" -> "up_proj (gated Mul)".
    private static string FoldSource(string target)
    {
        int open = target.IndexOf('\'');
        int close = open < 0 ? -1 : target.IndexOf('\'', open + 1);
        string node = close > open ? ShortNode(target[(open + 1)..close]) : target;
        int via = target.IndexOf(" via ", StringComparison.Ordinal);
        return via < 0 ? node : $"{node} ({target[(via + 5)..]})";
    }

    // "3 17 40"; with --float-outliers an activation can have hundreds: the first few and the count (--json lists all).
    private static string FloatChannelsText(IReadOnlyList<int> channels) => channels.Count switch
    {
        0 => "-",
        <= 8 => string.Join(" ", channels),
        _ => string.Join(" ", channels.Take(6)) + $" … ({channels.Count})",
    };

    public static void Print(IAnsiConsole console, SmoothSummary s)
    {
        var inv = CultureInfo.InvariantCulture;
        var table = new Table().Border(TableBorder.Simple).Title("smoothing groups");
        foreach (var column in new[] { "activation", "producer", "consumers", "fold", "alpha", "float ch.", "max/median", "after" })
            table.AddColumn(column);
        foreach (var g in s.Groups)
            table.AddRow(
                Markup.Escape(Shorten(g.Activation, 30)),
                g.Producer,
                Markup.Escape(string.Join(", ", g.Consumers.Select(ShortNode))),
                Markup.Escape(FoldText(g)),
                g.Alpha?.ToString("0.00", inv) ?? "-",
                FloatChannelsText(g.FloatChannels),
                g.RatioBefore.ToString("0.0", inv),
                g.RatioAfter.ToString("0.0", inv));
        console.Write(table);

        string calib = s.CalibrationSeconds is { } secs ? string.Create(inv, $", calibrated in {secs:0.0} s") : " (from --stats)";
        console.MarkupLineInterpolated($"[bold]{s.Model}[/] -> [bold]{s.Output}[/] ({Cli.Format.Bytes(s.InputBytes)} -> {Cli.Format.Bytes(s.OutputBytes)})");
        console.MarkupLineInterpolated($"calibration: {s.CalibrationSamples} x {s.CalibrationSequenceLength} tokens of {s.CalibrationData}{calib}; compiled in {s.CompileSeconds.ToString("0.0", inv)} s");
        int applied = s.Groups.Count(g => g.Target is not null);
        console.MarkupLineInterpolated($"smoothed {applied} of {s.Groups.Count} groups (alpha {s.Alpha})");
        if (s.Format is not null)
        {
            console.MarkupLineInterpolated($"W8A8 {s.Format}{(s.ReducedRange ? " (7-bit weights)" : "")}: {s.LinearsQuantized} of {s.Linears} MatMul/Gemm quantized{KeptSummary.Text(s.LinearsKept)}");
        }
        TableLines.Print(console, s.Tables);
        if (s.FloatOutlierThreshold is { } t)
        {
            int channels = s.Groups.Sum(g => g.FloatChannels.Count), activations = s.Groups.Count(g => g.FloatChannels.Count > 0);
            console.MarkupLineInterpolated($"float outliers (max |x| > {t.ToString("0.###", inv)}): {channels} channels of {activations} activations in floating point (column 'float ch.')");
        }
        if (s.Verification is { Reason: { } why })
            console.MarkupLineInterpolated($"held-out check: did not run: {why}");
        if (s.Verification?.Report is { } v)
        {
            var verify = new Table().Border(TableBorder.Simple).Title($"held-out check: {v.Samples} samples, {v.Tokens} tokens of {v.Data} on {v.Device}");
            verify.AddColumn("metric");
            verify.AddColumn(new TableColumn("original").RightAligned());
            verify.AddColumn(new TableColumn("emitted").RightAligned());
            verify.AddRow(Markup.Escape($"relative error of '{v.Output}'"), "", v.RelativeError.ToString("0.0000", inv));
            verify.AddRow("max |error|", "", v.MaxAbsError.ToString("0.####", inv));
            if (v.PerplexityOriginal is { } p0 && v.PerplexityEmitted is { } p1)
                verify.AddRow("perplexity", Cli.Format.Figure(p0, "0.000"), Cli.Format.Figure(p1, "0.000"));
            if (v.Top1Agreement is { } top1)
                verify.AddRow("top-1 agreement", "", top1.ToString("P2", inv));
            if (v.MeanCosine is { } cos)
                verify.AddRow("cosine of mean-pooled embeddings (mean / min)", "", string.Create(inv, $"{cos:0.00000} / {v.MinCosine:0.0000}"));
            console.Write(verify);
        }
        if (s.Format == "int8" && !s.Uint8Activations)
            console.MarkupLine("note: ONNX Runtime's CPU runs int8 x int8 MatMulInteger slowly (the form the CUDA EP needs); for CPU deployment add --uint8-activations or use --format qdq.");
        if (s.Latency is { } l)
            console.MarkupLineInterpolated($"latency, {l.Tokens} tokens on {l.Device}: {l.OriginalMs.ToString("0.0", inv)} ms -> {l.EmittedMs.ToString("0.0", inv)} ms ({l.Speedup.ToString("0.00", inv)}x)");
    }
}

public sealed record SmoothGroupSummary(string Activation, string Producer, IReadOnlyList<string> Consumers, string Status, string? Target,
    string FoldKind, float? Alpha, float RatioBefore, float RatioAfter, IReadOnlyList<int> FloatChannels)
{
    /// <summary>The status as the pass decided it (<see cref="Status"/> is its text).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public SmoothingStatus Code { get; init; }

    [System.Text.Json.Serialization.JsonIgnore]
    public FoldKind Fold { get; init; }
}

