using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxQuant.Tests.Reliability;

namespace OnnxQuant.Bench.Streaming;

/// <summary>
/// Decode speed at 7B width: a 1-token forward (every weight read once for one row of activations, so memory-bound like
/// decoding) of the fp32 model against its W4 MatMulNBits (accuracy_level 0 and 4) and W8A8 uint8 rewrites, all loaded
/// in one process and timed in alternation (two warm-ups each, then rounds of one run of each; medians), so background
/// load on the shared machine hits every variant alike. The models are generated and quantized in the work folder and
/// deleted afterwards (the fp32 8-layer model alone is 7.5 GB).
/// </summary>
public static class DecodeBench
{
    private sealed record Variant(string Key, string Title, string[]? Command);

    public static int Run(string cli, string work, int layers, string? results, int runs)
    {
        var options = StreamedLlamaOptions.Wide(layers) with { Fp16 = false };
        string folder = Path.Combine(work, $"decode-{layers}");
        Directory.CreateDirectory(folder);
        string model = Path.Combine(folder, "model.onnx");
        var variants = new List<Variant>
        {
            new("fp32", "FP32", null),
            new("w4-a0", "W4 MatMulNBits, block 128, accuracy_level 0", ["awq", model, "--method", "rtn", "--no-verify", "-o", Path.Combine(folder, "w4-a0.onnx")]),
            new("w4-a4", "W4 MatMulNBits, block 128, accuracy_level 4 (int8 compute)", ["awq", model, "--method", "rtn", "--accuracy-level", "4", "--no-verify", "-o", Path.Combine(folder, "w4-a4.onnx")]),
            new("w8-u8", "W8A8, uint8 per-token activations (MatMulInteger), no smoothing", ["smooth", model, "--alpha", "none", "--format", "dynamic", "--uint8-activations", "--no-verify", "-o", Path.Combine(folder, "w8-u8.onnx")]),
        };
        var sessions = new List<(Variant Variant, InferenceSession Session, long Bytes)>();
        try
        {
            var clock = Stopwatch.StartNew();
            StreamedLlama.Write(options, folder);
            Console.Error.WriteLine($"fp32 model: {options.WeightBytes / 1e9:F2} GB ({layers} layers) in {clock.Elapsed.TotalSeconds:F0} s");
            foreach (var v in variants.Where(v => v.Command is not null))
            {
                var run = ChildProcess.Run("dotnet", [cli, .. v.Command!]);
                Console.Error.WriteLine($"{v.Key}: exit {run.ExitCode} in {run.Seconds:F0} s");
                if (run.ExitCode != 0)
                {
                    Console.Error.WriteLine(run.Stderr);
                    return 1;
                }
            }
            foreach (var v in variants)
            {
                string path = v.Key == "fp32" ? model : Path.Combine(folder, v.Key + ".onnx");
                long bytes = new FileInfo(path).Length + (File.Exists(path + ".data") ? new FileInfo(path + ".data").Length : 0);
                // Each session holds its weights in memory; stop rather than push a shared machine into swap or OOM.
                long availableKb = MachineText.MemInfoKb("MemAvailable");
                if (availableKb * 1024 < bytes + (3L << 30))
                    throw new InvalidOperationException($"only {availableKb / 1048576.0:F1} GiB available; loading {v.Key} ({bytes / 1e9:F1} GB) needs it plus 3 GiB spare");
                clock.Restart();
                sessions.Add((v, new InferenceSession(path, new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL }), bytes));
                Console.Error.WriteLine($"loaded {v.Key} in {clock.Elapsed.TotalSeconds:F0} s");
            }
            var medians = AlternatingMedians(sessions.Select(s => s.Session).ToList(), runs);
            var table = Table(sessions.Select(s => (s.Variant.Title, s.Bytes)).ToList(), medians, options, layers, runs, results);
            Console.WriteLine(table);
            if (results is not null)
                File.WriteAllText(results, table, new UTF8Encoding(false));
            return 0;
        }
        finally
        {
            foreach (var s in sessions) s.Session.Dispose();
            Directory.Delete(folder, recursive: true);
        }
    }

    // Two warm-ups of each, then `runs` rounds of one run of each in turn; median ms per session.
    private static double[] AlternatingMedians(IReadOnlyList<InferenceSession> sessions, int runs)
    {
        var ids = new DenseTensor<long>(new long[] { 1 }, [1, 1]);
        var inputs = new List<NamedOnnxValue> { NamedOnnxValue.CreateFromTensor("input_ids", ids) };
        for (int w = 0; w < 2; w++)
            foreach (var s in sessions)
                using (s.Run(inputs)) { }
        var times = sessions.Select(_ => new double[runs]).ToArray();
        for (int r = 0; r < runs; r++)
            for (int i = 0; i < sessions.Count; i++)
            {
                long start = Stopwatch.GetTimestamp();
                using (sessions[i].Run(inputs)) { }
                times[i][r] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
        return times.Select(t => { var o = t.Order().ToArray(); return o.Length % 2 == 1 ? o[o.Length / 2] : (o[o.Length / 2 - 1] + o[o.Length / 2]) / 2; }).ToArray();
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";

    private static string Table(IReadOnlyList<(string Title, long Bytes)> variants, double[] medians, StreamedLlamaOptions o, int layers, int runs, string? results)
    {
        var inv = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.AppendLine("# Decode at 7B width: a 1-token forward, FP32 against W4 and W8A8").AppendLine();
        text.AppendLine(string.Create(inv, $"Produced by `dotnet run -c Release --project bench/OnnxQuant.Bench.Streaming -- <onnxquant.dll> <work> --decode --layers {layers} --runs {runs}{(results is null ? "" : " --results " + results)}` ")
            + string.Create(inv, $"on {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; machine: {MachineText.Describe()}; ONNX Runtime CPU, default threads; load average at the end: {LoadAverage()} (a shared machine: absolute times carry others' load, the ratios are what the alternation protects).")).AppendLine();
        text.AppendLine(string.Create(inv, $"Model: the streaming bench's 7B-wide Llama (hidden {o.Hidden}, intermediate {o.Intermediate}, vocab {o.Vocab}), {layers} layers, generated in fp32 ({o.WeightBytes / 1e9:F2} GB). ")
            + "The quantized variants are the CLI's `awq --method rtn` (W4, LM head kept in float) and `smooth --alpha none --format dynamic --uint8-activations` (W8A8 without calibration: per-token activation scales computed at run time). "
            + string.Create(inv, $"Input: one token (`input_ids` [1, 1]), no KV cache, so each forward reads every weight once for one row of activations, as a decode step does. All four sessions are loaded in one process; two warm-up runs each, then {runs} rounds of one run of each in turn; the median of each.")).AppendLine();
        text.AppendLine("| variant | model bytes | 1-token forward (median) | speed-up over FP32 |");
        text.AppendLine("| --- | ---: | ---: | ---: |");
        for (int i = 0; i < variants.Count; i++)
            text.AppendLine(string.Create(inv, $"| {variants[i].Title} | {variants[i].Bytes / 1e9:F2} GB | {medians[i]:F1} ms | {medians[0] / medians[i]:F2}x |"));
        return text.ToString();
    }
}
