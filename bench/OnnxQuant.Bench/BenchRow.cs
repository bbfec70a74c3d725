using System.Globalization;
using System.Text;
using OnnxQuant.Calibrate.Sessions;

namespace OnnxQuant.Bench;

/// <summary>One model's medians: plain inference and calibration over the same tokens.</summary>
internal sealed record BenchRow(string Model, long Tokens, double PlainSeconds, double PlainLoopSeconds, double CalibrationSeconds, double CalibrationLoopSeconds, double ReductionSeconds, int Tensors,
    double MinPairRatio, double MaxPairRatio)
{
    public double Overhead => CalibrationSeconds / PlainSeconds;

    public double LoopOverhead => CalibrationLoopSeconds / PlainLoopSeconds;

    public static string Markdown(IReadOnlyList<BenchRow> rows, Args args, SessionSettings settings)
    {
        var s = new StringBuilder();
        s.AppendLine("# Calibration throughput vs plain inference");
        s.AppendLine();
        s.AppendLine(Inv($"CPU execution provider, {(settings.Threads > 0 ? settings.Threads.ToString(CultureInfo.InvariantCulture) : "default")} threads, {args.Samples} samples x {args.SequenceLength} tokens, batch 1, median of {args.Repeat} alternating runs ({Environment.ProcessorCount} cores, {Environment.OSVersion.Platform}{LoadAverage()}). Made by `dotnet run -c Release --project bench/OnnxQuant.Bench`."));
        s.AppendLine();
        s.AppendLine("| model | recorded tensors | tokens | plain inference tok/s | calibration tok/s | waiting for reduction | overhead, end to end | overhead, inference loop only | end-to-end ratio of each pair (min - max) |");
        s.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var r in rows)
            s.AppendLine(Inv($"| {r.Model} | {r.Tensors} | {r.Tokens} | {r.Tokens / r.PlainSeconds:0} | {r.Tokens / r.CalibrationSeconds:0} | {100 * r.ReductionSeconds / r.CalibrationSeconds:0.0}% | {r.Overhead:0.00}x | {r.LoopOverhead:0.00}x | {r.MinPairRatio:0.00} - {r.MaxPairRatio:0.00} |"));
        s.AppendLine();
        s.AppendLine("A ratio below 1 is noise: both runs do the same inference, and calibration's reduction runs beside the next batch's inference. On a shared machine the pairs scatter; compare the spread, not the second digit.");
        s.AppendLine("End to end counts session creation in both columns (the recording copy is built and serialised, the baseline model loaded); the loop column compares the runs alone.");
        s.AppendLine();
        s.AppendLine("Goal: overhead <= 1.20x.");
        return s.ToString();
    }

    // Other processes on the machine change the numbers; the load average says how busy it was.
    private static string LoadAverage()
    {
        try
        {
            var parts = File.ReadAllText("/proc/loadavg").Split(' ');
            return $", load average {parts[0]} at the end";
        }
        catch (IOException) { return ""; }
        catch (UnauthorizedAccessException) { return ""; }
    }

    private static string Inv(FormattableString f) => f.ToString(CultureInfo.InvariantCulture);
}

internal sealed record Args(int Samples, int SequenceLength, int Threads, int Repeat, string? Output)
{
    public static Args Parse(string[] args)
    {
        int samples = 16, seq = 256, threads = 0, repeat = 3;
        string? output = Path.Combine(RepoRoot(), "bench", "results", "calibration.md");
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--samples": samples = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--seq-len": seq = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--threads": threads = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--repeat": repeat = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--out": output = Next(); break;
                case "--no-out": output = null; break;
                default: throw new ArgumentException($"unknown argument {args[i]}");
            }
        }
        return new Args(samples, seq, threads, repeat, output);
    }

    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "OnnxQuant.sln")))
                return dir.FullName;
        return Directory.GetCurrentDirectory();
    }
}
