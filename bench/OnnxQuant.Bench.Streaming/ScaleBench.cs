using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using OnnxQuant.Tests.Reliability;

namespace OnnxQuant.Bench.Streaming;

/// <summary>One command of the scale bench and what it reported.</summary>
public sealed record ScaleRow(int Layers, long ModelBytes, double CopySeconds, string Stage, string Command, ChildRun Run,
    double? CalibrationSeconds, double? CompileSeconds, long OutputBytes);

/// <summary>
/// The 7B-wide model at several depths through the weight-only passes and the calibrated ones (`smooth` with its alpha
/// search, `awq` with its scale search), each as the Release CLI under /usr/bin/time: time per stage (calibration and
/// all after it, from the command's --json summary), peak RSS and output size, as ratios to a `cp` of the same weights
/// and to the model's bytes, all measured in one run.
/// </summary>
public static class ScaleBench
{
    private const int Samples = 16, SequenceLength = 128;

    private sealed record Stage(string Key, string Title, Func<string, string, string, string[]> Arguments);

    private static readonly Stage[] Stages =
    [
        new("rtn", "`awq --method rtn`", (m, o, _) => ["awq", m, "--method", "rtn", "--no-verify", "--json", "-o", o]),
        new("w8", "`smooth --alpha none --format dynamic`", (m, o, _) => ["smooth", m, "--alpha", "none", "--format", "dynamic", "--no-verify", "--json", "-o", o]),
        new("smooth", "`smooth` (auto alpha)", (m, o, d) => ["smooth", m, "--data", d, "--samples", $"{Samples}", "--seq-len", $"{SequenceLength}", "--no-verify", "--json", "-o", o]),
        new("awq", "`awq`", (m, o, d) => ["awq", m, "--data", d, "--samples", $"{Samples}", "--seq-len", $"{SequenceLength}", "--no-verify", "--json", "-o", o]),
    ];

    /// <param name="rowDone">Called with all rows so far after each command, so an interrupted run keeps what it measured.</param>
    public static List<ScaleRow> Run(string cli, string work, IReadOnlyList<int> depths, IReadOnlyList<string> stages, bool keepModels,
        Action<IReadOnlyList<ScaleRow>>? rowDone = null)
    {
        var rows = new List<ScaleRow>();
        foreach (int layers in depths)
        {
            var options = StreamedLlamaOptions.Wide(layers);
            string folder = Path.Combine(work, $"layers-{layers}");
            string model = Path.Combine(folder, "model.onnx");
            if (!File.Exists(model) || new FileInfo(model + ".data").Length < options.WeightBytes / 2)
                StreamedLlama.Write(options, folder);
            string data = Path.Combine(folder, "calibration.ids");
            WriteIds(data, options.Vocab, 2 * Samples * SequenceLength);
            double copy = Copy(model + ".data", Path.Combine(folder, "copy.data"));
            Console.Error.WriteLine($"{layers} layers: {options.WeightBytes / 1e9:F2} GB, cp {copy:F2} s");
            foreach (var stage in Stages.Where(s => stages.Contains(s.Key)))
            {
                string output = Path.Combine(folder, stage.Key + ".onnx");
                var run = ChildProcess.Run("dotnet", [cli, .. stage.Arguments(model, output, data)]);
                var (calibration, compile) = Timings(run.Stdout);
                long outBytes = Bytes(output) + Bytes(output + ".data");
                var row = new ScaleRow(layers, options.WeightBytes, copy, stage.Title,
                    string.Join(' ', stage.Arguments("model.onnx", stage.Key + ".onnx", "calibration.ids")), run, calibration, compile, outBytes);
                Console.WriteLine(Format(row));
                if (run.ExitCode != 0)
                    Console.Error.WriteLine(run.Stderr);
                rows.Add(row);
                rowDone?.Invoke(rows);
                File.Delete(output);
                File.Delete(output + ".data");
            }
            if (!keepModels)
                Directory.Delete(folder, recursive: true);
        }
        return rows;
    }

    public static string Format(ScaleRow r)
    {
        var inv = CultureInfo.InvariantCulture;
        string S(double? v) => v is { } x ? x.ToString("0.0", inv) + " s" : "—";
        double rss = r.Run.PeakRssBytes;
        return string.Create(inv,
            $"| {r.Layers} | {r.Stage} | {r.Run.ExitCode} | {S(r.CalibrationSeconds)} | {S(r.CompileSeconds)} | {r.Run.Seconds:0.0} s | {r.Run.Seconds / r.CopySeconds:0.0}x | " +
            $"{(r.CalibrationSeconds is > 0 && r.CompileSeconds is { } c ? (c / r.CalibrationSeconds.Value).ToString("0.0", inv) + "x" : "—")} | " +
            $"{rss / (1L << 30):0.00} GiB | {rss / r.ModelBytes:0.00} | {r.OutputBytes / 1e9:0.00} GB | {(double)r.OutputBytes / r.ModelBytes:0.00} |");
    }

    public static void Write(string path, IReadOnlyList<ScaleRow> rows, string command, string machine)
    {
        var text = new StringBuilder();
        text.AppendLine("# Scale: a 7B-wide model through calibration, `smooth` and `awq` on one machine").AppendLine();
        text.AppendLine($"Produced by `{command}` on {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; machine: {machine}.").AppendLine();
        text.AppendLine("Model: the 7B-wide fp16 Llama of `bench/OnnxQuant.Bench.Streaming` (hidden 4096, intermediate 11008, vocab 32000), " +
            "weights in one external data file. Calibration: " + $"{Samples} x {SequenceLength} random token ids (the model has no tokenizer; " +
            "`--data calibration.ids`). Each command runs as the Release CLI with `--no-verify --json` in a child process under `/usr/bin/time -v` " +
            "(peak RSS: the kernel's maximum resident set of the process, mapped pages of the input included). Calibration runs block by block " +
            "(the default; docs/architecture.md, \"Layer-wise calibration\").").AppendLine();
        text.AppendLine("Columns: *calibration* is the command's own calibration time; *after calibration* is everything after it " +
            "(searches, folds, rewrite, save); *x cp* divides the command's wall time by a `cp` of the weights file (page cache warm) in the same run; " +
            "*compile / calib* is after-calibration over calibration time; *RSS / model* divides the peak RSS by the weights' bytes.").AppendLine();
        foreach (var group in rows.GroupBy(r => r.Layers))
        {
            var first = group.First();
            text.AppendLine(string.Create(CultureInfo.InvariantCulture, $"- {group.Key} layers: {first.ModelBytes / 1e9:0.00} GB of weights; `cp` of the data file {first.CopySeconds:0.00} s"));
        }
        text.AppendLine();
        text.AppendLine("| layers | command | exit | calibration | after calibration | wall | x cp | compile / calib | peak RSS | RSS / model | output | output / model |");
        text.AppendLine("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var row in rows)
            text.AppendLine(Format(row));
        text.AppendLine().AppendLine("Commands (in the model's folder):").AppendLine();
        foreach (var command1 in rows.Select(r => r.Command).Distinct())
            text.AppendLine($"- `onnxquant {command1}`");
        File.WriteAllText(path, text.ToString());
    }

    // The command's --json summary: smooth reports calibration and compile (which includes calibration), awq its total.
    private static (double? Calibration, double? AfterCalibration) Timings(string stdout)
    {
        int start = stdout.IndexOf('{');
        if (start < 0)
            return (null, null);
        try
        {
            using var doc = JsonDocument.Parse(stdout[start..]);
            var root = doc.RootElement;
            double? calibration = root.TryGetProperty("calibration_seconds", out var c) && c.ValueKind == JsonValueKind.Number ? c.GetDouble() : null;
            double? total = root.TryGetProperty("total_seconds", out var t) ? t.GetDouble()
                : root.TryGetProperty("compile_seconds", out var k) ? k.GetDouble() : null;
            return (calibration, total - (calibration ?? 0));
        }
        catch (JsonException)
        {
            return (null, null);
        }
    }

    // Random ids, seeded: the bench measures cost, not accuracy.
    private static void WriteIds(string path, int vocab, int count)
    {
        var rng = new Random(12);
        File.WriteAllText(path, string.Join(' ', Enumerable.Range(0, count).Select(_ => rng.Next(vocab).ToString(CultureInfo.InvariantCulture))));
    }

    // Read once to warm the page cache, then time the copy the table compares with.
    private static double Copy(string source, string target)
    {
        ChildProcess.Run("cp", [source, target]);
        File.Delete(target);
        var clock = Stopwatch.StartNew();
        ChildProcess.Run("cp", [source, target]);
        double seconds = clock.Elapsed.TotalSeconds;
        File.Delete(target);
        return seconds;
    }

    private static long Bytes(string path) => File.Exists(path) ? new FileInfo(path).Length : 0;
}
