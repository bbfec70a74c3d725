using System.Globalization;

namespace OnnxQuant.Cli;

/// <summary>Human-readable numbers and truncated name lists for terminal output.</summary>
public static class Format
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>1536 -> "1.5 KiB", 90893304 -> "86.7 MiB".</summary>
    public static string Bytes(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        int unit = 0;
        while (Math.Abs(value) >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        return unit == 0 ? $"{bytes} B" : value.ToString("0.0", Inv) + " " + units[unit];
    }

    /// <summary>22713216 -> "22.7M", 4096 -> "4.1K", 512 -> "512".</summary>
    public static string Count(long count) => count switch
    {
        >= 1_000_000_000 => (count / 1e9).ToString("0.0", Inv) + "B",
        >= 1_000_000 => (count / 1e6).ToString("0.0", Inv) + "M",
        >= 10_000 => (count / 1e3).ToString("0.0", Inv) + "K",
        _ => count.ToString(Inv),
    };

    /// <summary>A measured figure: <paramref name="format"/> up to a million, then scientific ("3.142e+45" rather than 46 digits).</summary>
    public static string Figure(double value, string format) =>
        double.IsFinite(value) && Math.Abs(value) >= 1e6 ? value.ToString("0.###e+0", Inv) : value.ToString(format, Inv);

    /// <summary>"a, b, c ... and 7 more".</summary>
    public static string Names(IEnumerable<string> names, int max = 6)
    {
        var list = names.ToList();
        string shown = string.Join(", ", list.Take(max));
        return list.Count > max ? $"{shown} ... and {list.Count - max} more" : shown;
    }

    public static string Percent(long before, long after) =>
        before == 0 ? "" : ((after - before) * 100.0 / before).ToString("+0.0;-0.0;0.0", Inv) + "%";

    public static string Number(double value) => value.ToString("G4", Inv);
}
