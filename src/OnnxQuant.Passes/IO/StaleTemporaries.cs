using System.Diagnostics;
using System.Text.RegularExpressions;

namespace OnnxQuant.IO;

/// <summary>
/// Removes the temporaries a killed run left beside an output (<c>out.onnx.tmp-PID-GUID</c>, <c>out.onnx.data.tmp-PID-GUID</c>):
/// a SIGKILL runs no cleanup, so the next run that writes the same output deletes those whose process is gone. Only names
/// of that exact shape for that output are touched, and never one whose process still runs.
/// </summary>
public static partial class StaleTemporaries
{
    /// <summary>The suffix a writer in this process gives its temporary files.</summary>
    public static string NewSuffix() => $".tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";

    /// <summary>Deletes stale temporaries of <paramref name="outputPath"/> and of its <c>.data</c> file; returns how many.</summary>
    public static int Remove(string outputPath)
    {
        string full = Path.GetFullPath(outputPath);
        string? folder = Path.GetDirectoryName(full);
        if (folder is null || !Directory.Exists(folder))
            return 0;
        string name = Path.GetFileName(full);
        int removed = 0;
        foreach (var file in Directory.EnumerateFiles(folder, name + "*.tmp-*"))
        {
            string rest = Path.GetFileName(file)[name.Length..];
            var match = Temporary().Match(rest);
            if (!match.Success || !int.TryParse(match.Groups[1].Value, out int pid) || Alive(pid))
                continue;
            try
            {
                File.Delete(file);
                removed++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Someone else's file we may not delete: leave it.
            }
        }
        return removed;
    }

    private static bool Alive(int pid)
    {
        if (pid == Environment.ProcessId)
            return true;
        if (OperatingSystem.IsLinux())
            return Directory.Exists($"/proc/{pid}");
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    [GeneratedRegex("^(?:\\.data)?\\.tmp-(\\d+)-[0-9a-f]{32}$")]
    private static partial Regex Temporary();
}
