using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace OnnxQuant.Bench.Schemes;

/// <summary>One finished child process: exit code, output, wall time and peak resident memory.</summary>
internal sealed record ChildResult(string CommandLine, int ExitCode, string Stdout, string Stderr, double WallSeconds, long PeakRssBytes)
{
    public JsonElement Json()
    {
        if (ExitCode != 0)
            throw new InvalidOperationException($"`{CommandLine}` exited with {ExitCode}: {Stderr.Trim()}");
        return JsonDocument.Parse(Stdout).RootElement;
    }
}

/// <summary>
/// Runs a command as a child process and measures it: wall time with a stopwatch, peak RSS with GNU time's %M
/// (/usr/bin/time; the kernel's ru_maxrss of the child) or, without it, by polling the child's VmHWM.
/// </summary>
internal static class ChildRun
{
    private const string GnuTime = "/usr/bin/time";

    public static ChildResult Run(string executable, IReadOnlyList<string> args, string workingDirectory)
    {
        string commandLine = string.Join(" ", new[] { executable }.Concat(args).Select(Quote));
        string? timeFile = File.Exists(GnuTime) ? Path.GetTempFileName() : null;
        var start = new ProcessStartInfo(timeFile is null ? executable : GnuTime)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        if (timeFile is not null)
            foreach (var a in new[] { "-f", "%M", "-o", timeFile, executable }) start.ArgumentList.Add(a);
        foreach (var a in args) start.ArgumentList.Add(a);
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {executable}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        long polledPeak = 0;
        while (!process.WaitForExit(50))
            if (timeFile is null)
                polledPeak = Math.Max(polledPeak, ReadVmHwm(process.Id));
        process.WaitForExit();
        double wall = clock.Elapsed.TotalSeconds;
        long peak = polledPeak;
        if (timeFile is not null)
        {
            // GNU time writes "Command exited with non-zero status N" before the figure on failure; the figure is the last line.
            var last = File.ReadAllLines(timeFile).LastOrDefault(l => l.Trim().Length > 0);
            if (last is not null && long.TryParse(last.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long kib))
                peak = kib * 1024;
            File.Delete(timeFile);
        }
        return new ChildResult(commandLine, process.ExitCode, stdout.Result, stderr.Result, wall, peak);
    }

    private static long ReadVmHwm(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException)
        {
            // The child exited between the check and the read.
        }
        return 0;
    }

    private static string Quote(string arg) => arg.Contains(' ') ? $"\"{arg}\"" : arg;
}
