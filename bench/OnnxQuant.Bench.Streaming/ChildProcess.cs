using System.Diagnostics;
using System.Globalization;

namespace OnnxQuant.Bench.Streaming;

/// <summary>What one child run cost: wall time, peak resident set (the kernel's own maximum) and how it ended.</summary>
public sealed record ChildRun(int ExitCode, double Seconds, long PeakRssBytes, string Stderr, string Stdout = "");

/// <summary>
/// Runs a command under <c>/usr/bin/time -v</c>, whose "Maximum resident set size" is the kernel's peak RSS of the
/// process (rusage ru_maxrss), exact however short the peak; polling /proc would miss a brief one.
/// </summary>
public static class ChildProcess
{
    public static ChildRun Run(string fileName, IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo("/usr/bin/time") { RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add("-v");
        start.ArgumentList.Add(fileName);
        foreach (var a in arguments)
            start.ArgumentList.Add(a);
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start /usr/bin/time");
        var stdout = process.StandardOutput.ReadToEndAsync();
        string stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        double seconds = clock.Elapsed.TotalSeconds;
        long peakKb = 0;
        foreach (var line in stderr.Split('\n'))
        {
            string t = line.Trim();
            if (t.StartsWith("Maximum resident set size (kbytes):", StringComparison.Ordinal))
                peakKb = long.Parse(t[(t.LastIndexOf(':') + 1)..].Trim(), CultureInfo.InvariantCulture);
        }
        return new ChildRun(process.ExitCode, seconds, peakKb * 1024, stderr, stdout.Result);
    }
}
