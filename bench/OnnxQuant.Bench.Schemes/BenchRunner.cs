using System.Globalization;
using System.Text.Json;

namespace OnnxQuant.Bench.Schemes;

/// <summary>Runs every scheme on one model through the `onnxquant` CLI and collects the figures.</summary>
internal sealed class BenchRunner(string onnxquant, string root, string outFolder, bool quick, TextWriter log)
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    private int CalibrationSamples => quick ? 16 : 128;

    private int LatencyRuns => quick ? 3 : 10;

    public (CalibrationRow? Calibration, List<SchemeRow> Rows) Run(BenchModel model, IReadOnlyList<Scheme> schemes)
    {
        string folder = Path.Combine(outFolder, model.Name);
        Directory.CreateDirectory(folder);
        string stats = Path.Combine(folder, "model.calib");
        var calibration = Calibrate(model, stats, 512);
        // Schemes that keep more rows per tensor (GPTQ) get their own statistics, calibrated on the same samples.
        var moreRows = schemes.Select(s => s.SampleRows).Where(r => r != 512).Distinct()
            .ToDictionary(r => r, r => (Path: Path.Combine(folder, $"model.{r}rows.calib"), Ok: false));
        foreach (var r in moreRows.Keys.ToList())
            moreRows[r] = (moreRows[r].Path, Calibrate(model, moreRows[r].Path, r) is not null);
        var rows = new List<SchemeRow>();
        foreach (var scheme in schemes)
        {
            log.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {model.Name}: {scheme.Name}");
            var row = moreRows.TryGetValue(scheme.SampleRows, out var own)
                ? RunScheme(model, scheme, own.Path, folder, own.Ok)
                : RunScheme(model, scheme, stats, folder, calibration is not null);
            log.WriteLine(row.Error is null
                ? $"    size {row.SizeBytes / 1e6:0.00} MB, pass {row.PassSeconds?.ToString("0.0", Inv) ?? "-"} s, loss {row.AccuracyLossPercent?.ToString("0.000", Inv) ?? "-"}%, prefill {row.PrefillMs?.ToString("0.0", Inv)} ms"
                : $"    failed: {row.Error}");
            rows.Add(row);
        }
        return (calibration, rows);
    }

    private CalibrationRow? Calibrate(BenchModel model, string stats, int sampleRows)
    {
        string[] args = ["calibrate", model.ModelPath, "-o", stats, "--samples", CalibrationSamples.ToString(Inv), "--seq-len", model.CalibrationTokens.ToString(Inv),
            "--sample-rows", sampleRows.ToString(Inv),
            .. model.TokenizerArgs, "--device", "cpu", "--json"];
        var result = ChildRun.Run(onnxquant, args, root);
        if (result.ExitCode != 0)
        {
            log.WriteLine($"    calibration failed: {FirstLine(result.Stderr)}");
            return null;
        }
        return new CalibrationRow(model.Name, result.CommandLine, result.WallSeconds, result.PeakRssBytes, CalibrationSamples, model.CalibrationTokens);
    }

    private SchemeRow RunScheme(BenchModel model, Scheme scheme, string stats, string folder, bool calibrated)
    {
        var row = new SchemeRow { Model = model.Name, Scheme = scheme.Name, Label = scheme.Label };
        string emitted = model.ModelPath;
        if (scheme.PassArgs is not null)
        {
            string schemeFolder = Path.Combine(folder, scheme.Name);
            if (Directory.Exists(schemeFolder))
                Directory.Delete(schemeFolder, recursive: true);
            Directory.CreateDirectory(schemeFolder);
            emitted = Path.Combine(schemeFolder, "model.onnx");
            var args = scheme.PassArgs(new PassInputs(model, stats, emitted));
            if (args.Contains("--stats") && !calibrated)
                return row with { Error = "no calibration statistics (calibrate failed)" };
            var pass = ChildRun.Run(onnxquant, args, root);
            if (pass.ExitCode != 0)
                return row with
                {
                    Error = pass.Stderr.Contains($"Unrecognized command or argument '{args[0]}'", StringComparison.Ordinal)
                        ? $"this build of onnxquant has no `{args[0]}` command"
                        : $"`onnxquant {args[0]}` exited with {pass.ExitCode}: {FirstLine(pass.Stderr)}",
                    PassCommand = pass.CommandLine,
                };
            row = row with
            {
                PassCommand = pass.CommandLine,
                PassSeconds = pass.WallSeconds,
                PassPeakRssBytes = pass.PeakRssBytes,
                SizeBytes = Directory.GetFiles(schemeFolder).Sum(f => new FileInfo(f).Length),
            };
        }
        else
        {
            row = row with { SizeBytes = ModelBytes(model.ModelPath) };
        }
        bool withReference = scheme.PassArgs is not null || model.IsEncoder;
        string[] evalArgs = ["eval", emitted, .. model.TokenizerArgs, .. model.EvalArgs, .. (withReference ? new[] { "--reference", model.ModelPath } : []),
            "--latency", BenchPlan.PrefillTokens.ToString(Inv), "--latency-runs", LatencyRuns.ToString(Inv), "--device", "cpu", "--json"];
        var eval = ChildRun.Run(onnxquant, evalArgs, root);
        if (eval.ExitCode != 0)
            return row with { Error = $"`onnxquant eval` exited with {eval.ExitCode}: {FirstLine(eval.Stderr)}" };
        return WithEval(row, eval.Json());
    }

    private static SchemeRow WithEval(SchemeRow row, JsonElement json)
    {
        static double? Number(JsonElement parent, string name) =>
            parent.ValueKind == JsonValueKind.Object && parent.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
        var p = json.GetProperty("perplexity");
        var e = json.GetProperty("embedding");
        var l = json.GetProperty("latency");
        return row with
        {
            Perplexity = Number(p, "perplexity"),
            ReferencePerplexity = Number(p, "reference_perplexity") ?? Number(p, "perplexity"),
            Top1Agreement = Number(p, "top1_agreement"),
            RelativeError = Number(p, "relative_error") ?? Number(e, "relative_error"),
            MeanCosine = Number(e, "mean_cosine"),
            MinCosine = Number(e, "min_cosine"),
            NeighbourAgreement = Number(e, "neighbour_agreement"),
            PrefillMs = Number(l, "prefill_ms"),
            ReferencePrefillMs = Number(l, "reference_prefill_ms"),
            StepMs = Number(l, "step_ms"),
            ReferenceStepMs = Number(l, "reference_step_ms"),
        };
    }

    /// <summary>The model file plus its external data files (files beside it named after it, like model.onnx.data).</summary>
    public static long ModelBytes(string modelPath)
    {
        var file = new FileInfo(modelPath);
        long bytes = file.Length;
        foreach (var sibling in file.Directory!.GetFiles(file.Name + "*"))
            if (sibling.Name != file.Name && sibling.Name.EndsWith(".data", StringComparison.Ordinal))
                bytes += sibling.Length;
        return bytes;
    }

    /// <summary>The CLI's error paragraph (wrapped over lines) as one line, without notes before it.</summary>
    private static string FirstLine(string text)
    {
        int error = text.IndexOf("error", StringComparison.Ordinal);
        string paragraph = string.Join(" ", text[(error < 0 ? 0 : error)..].Split((char[])['\n', '\r', ' '], StringSplitOptions.RemoveEmptyEntries));
        return paragraph.Length > 300 ? paragraph[..300] + "…" : paragraph;
    }
}
