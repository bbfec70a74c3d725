using System.Globalization;

namespace OnnxQuant.Bench.Streaming;

/// <summary>The machine a result was measured on, in one line for a results file.</summary>
public static class MachineText
{
    public static string Describe()
    {
        string cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        long kb = MemInfoKb("MemTotal");
        return $"{cpu}, {Environment.ProcessorCount} cores, {kb / 1048576.0:F0} GiB RAM, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}";
    }

    /// <summary>A /proc/meminfo field in kB (MemTotal, MemAvailable).</summary>
    public static long MemInfoKb(string field)
    {
        string line = File.ReadLines("/proc/meminfo").First(l => l.StartsWith(field + ":", StringComparison.Ordinal));
        return long.Parse(new string(line.Where(char.IsAsciiDigit).ToArray()), CultureInfo.InvariantCulture);
    }
}
