using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace OnnxQuant.Bench.Schemes;

/// <summary>Writes bench/results.md: one table per model, with the date, the machine and how it was run.</summary>
internal static partial class ResultsWriter
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Write(string path, string plotFile, string root, bool quick, DateTime started, TimeSpan elapsed, string loadBefore,
        IReadOnlyList<BenchModel> models, IReadOnlyDictionary<string, CalibrationRow?> calibrations, IReadOnlyList<SchemeRow> rows, string? mergeNote = null)
    {
        var md = new StringBuilder();
        md.AppendLine("# Quantization schemes: accuracy, size, time, memory, CPU latency").AppendLine();
        md.AppendLine($"Produced by `dotnet run -c Release --project bench/OnnxQuant.Bench.Schemes{(quick ? " -- --quick" : "")}` " +
            $"on {started:yyyy-MM-dd HH:mm} UTC in {elapsed.TotalMinutes:0} min{(quick ? " (**--quick**: fewer calibration samples, evaluation tokens and timing runs)" : "")}.");
        md.AppendLine();
        if (mergeNote is not null)
            md.AppendLine(mergeNote).AppendLine();
        md.AppendLine($"Machine: {Machine()}; ONNX Runtime {OrtVersion(root)} CPU execution provider; load average before the run: {loadBefore} " +
            "(the machine is shared, so timings carry noise; latencies are medians and each is measured against FP32 in the same process, alternating).");
        md.AppendLine();
        md.AppendLine("Every figure comes from the Release `onnxquant` CLI run as a child process with `--json`, as a user would run it: " +
            "`calibrate` once per model (its statistics are shared by the W8A8 schemes and AWQ; RTN needs none), then the scheme's command " +
            "(`smooth` or `awq`, with `--stats` and `--no-verify`), then `onnxquant eval` on the emitted model with `--reference` (the FP32 model) and `--latency 512`.");
        md.AppendLine();
        md.AppendLine($"- **W8A8** = `onnxquant smooth` with its default `--format int8`: weights int8 per output channel, activations int8 with one " +
            "static scale per tensor from calibration (QuantizeLinear -> MatMulInteger s8 x s8 -> rescale), a harder setting than SmoothQuant's published " +
            $"per-token dynamic one; naive = `--alpha none`, fixed = `--alpha {BenchPlan.FixedAlpha}`, auto = per-group alpha search; " +
            "the uint8 row adds `--uint8-activations` (zero point 128), the form ONNX Runtime's CPU kernels run fast (its s8 x s8 MatMulInteger is a slow path; the CUDA EP runs only s8 x s8). " +
            "**W4** = `onnxquant awq` with MatMulNBits, asymmetric 4-bit blocks of 128 along K (`--method rtn` or `awq`). The LM head stays FP32 in both.");
        md.AppendLine("- **pass time**: wall time of the quantizing command (process start to exit: load, pass, save; calibration excluded, listed per model). " +
            "**peak RSS**: the child's maximum resident set (GNU time `%M`).");
        md.AppendLine("- **size**: the emitted .onnx plus its external data. Embeddings (Gather) and the LM head stay FP32 in every scheme, so the small models shrink less than 4x / 8x.");
        md.AppendLine($"- **prefill**: one forward pass over {BenchPlan.PrefillTokens} tokens; **1-token forward**: one forward pass over one token. " +
            "None of these models has a KV cache, so a 1-token forward is what a decoding step costs without one (for MiniLM it is a 1-token encode).");
        md.AppendLine("- **logits error** / **hidden-state error**: ||output - FP32 output|| / ||FP32 output|| over the evaluated tokens; with top-1 " +
            "agreement (share of positions where both models predict the same next token) the direct measure of how far a scheme moves the function.");
        md.AppendLine("- Perplexity can *drop* slightly under quantization here: the Austen LM is over-confident on the held-out novel (measured on its " +
            "PyTorch checkpoint over the first 8 windows: perplexity 117.87 at temperature 1, 117.20 with logits divided by 1.05), so noise that " +
            "flattens its distribution helps a little. Read changes of a few tenths of a percent together with the logits error and top-1 agreement.");
        md.AppendLine("- Latency cells read \"scheme / FP32\": both medians come from the same `eval` process, timed in alternation, so they share " +
            "the machine's load at that moment; **vs FP32** = FP32 time / scheme time (above 1 = faster). FP32 rows show FP32 timed alone.");
        md.AppendLine();
        md.AppendLine($"![accuracy loss against model size]({plotFile})");
        md.AppendLine();
        foreach (var model in models)
        {
            var modelRows = rows.Where(r => r.Model == model.Name).ToList();
            if (modelRows.Count == 0) continue;
            md.AppendLine($"## {model.Name}").AppendLine();
            md.AppendLine(model.Description + ".").AppendLine();
            if (calibrations.GetValueOrDefault(model.Name) is { } c)
                md.AppendLine($"Calibration: {c.Samples} samples x {c.Tokens} tokens of Emma, {c.Seconds:0.0} s, peak RSS {Mb(c.PeakRssBytes)}.").AppendLine();
            else
                md.AppendLine("Calibration failed; schemes that need statistics have no figures.").AppendLine();
            Table(md, model, modelRows);
            md.AppendLine();
        }
        File.WriteAllText(path, md.ToString());
    }

    private static void Table(StringBuilder md, BenchModel model, List<SchemeRow> rows)
    {
        var fp32 = rows.FirstOrDefault(r => r.Scheme == "fp32");
        string accuracy = model.IsEncoder ? "mean cosine | min cosine | NN agreement | hidden-state error" : "perplexity | vs FP32 | top-1 agreement | logits error";
        md.AppendLine($"| scheme | {accuracy} | size | vs FP32 | pass time | peak RSS | prefill {BenchPlan.PrefillTokens} | vs FP32 | 1-token forward | vs FP32 |");
        md.AppendLine("| --- |" + string.Concat(Enumerable.Repeat(" ---: |", 12)));
        foreach (var r in rows)
        {
            if (r.Error is not null)
            {
                md.AppendLine($"| {r.Label} | not measured: {r.Error.Replace("|", "\\|")} " + new string('|', 12));
                continue;
            }
            string acc = model.IsEncoder
                ? $"{F(r.MeanCosine, "0.00000")} | {F(r.MinCosine, "0.00000")} | {P(r.NeighbourAgreement)} | {F(r.RelativeError, "0.0000")}"
                : $"{F(r.Perplexity, "0.000")} | {(r.Scheme == "fp32" ? "—" : Signed(r.AccuracyLossPercent))} | {(r.Scheme == "fp32" ? "—" : P(r.Top1Agreement))} | {(r.Scheme == "fp32" ? "—" : F(r.RelativeError, "0.0000"))}";
            string sizeRatio = fp32 is { SizeBytes: > 0 } ? (r.SizeBytes / (double)fp32.SizeBytes).ToString("0.00", Inv) + "x" : "—";
            md.AppendLine($"| {r.Label} | {acc} | {Mb(r.SizeBytes)} | {sizeRatio} | {(r.PassSeconds is { } s ? s.ToString("0.0", Inv) + " s" : "—")} | " +
                $"{(r.PassPeakRssBytes is { } m ? Mb(m) : "—")} | {Latency(r, r.PrefillMs, r.ReferencePrefillMs, "0.0")} | {Speedup(r, r.ReferencePrefillMs, r.PrefillMs)} | " +
                $"{Latency(r, r.StepMs, r.ReferenceStepMs, "0.00")} | {Speedup(r, r.ReferenceStepMs, r.StepMs)} |");
        }
    }

    /// <summary>"scheme / FP32 ms", both from the same eval process (FP32 rows: their own time).</summary>
    private static string Latency(SchemeRow r, double? ms, double? reference, string format) =>
        r.Scheme == "fp32" || reference is null ? $"{F(ms, format)} ms" : $"{F(ms, format)} / {F(reference, format)} ms";

    private static string Speedup(SchemeRow r, double? reference, double? ms) =>
        r.Scheme == "fp32" || reference is null || ms is not > 0 ? "—" : (reference.Value / ms.Value).ToString("0.00", Inv) + "x";

    private static string Mb(long bytes) => (bytes / 1e6).ToString(bytes < 10e6 ? "0.00" : "0.0", Inv) + " MB";

    private static string F(double? value, string format) => value?.ToString(format, Inv) ?? "—";

    private static string P(double? share) => share is { } s ? (s * 100).ToString("0.0", Inv) + "%" : "—";

    private static string Signed(double? percent) => percent is { } p ? (p >= 0 ? "+" : "") + p.ToString("0.00", Inv) + "%" : "—";

    private static string Machine()
    {
        string cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU"
            : "unknown CPU";
        string memory = File.Exists("/proc/meminfo")
            ? File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal", StringComparison.Ordinal)) is { } m
                ? (long.Parse(Digits().Match(m).Value, Inv) / 1048576.0).ToString("0", Inv) + " GiB RAM"
                : ""
            : "";
        return $"{cpu}, {Environment.ProcessorCount} cores, {memory}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}";
    }

    private static string OrtVersion(string root)
    {
        var props = File.ReadAllText(Path.Combine(root, "Directory.Packages.props"));
        var match = OrtPackage().Match(props);
        return match.Success ? match.Groups[1].Value : "(version unknown)";
    }

    [GeneratedRegex(@"\d+")]
    private static partial Regex Digits();

    [GeneratedRegex(@"Microsoft\.ML\.OnnxRuntime\.Gpu\.Linux"" Version=""([^""]+)""")]
    private static partial Regex OrtPackage();
}
