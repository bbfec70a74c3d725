using System.Globalization;
using OnnxQuant.Advice;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.Advice;

/// <summary>The measured error of each scheme in bench/results.md (what `advise` must rank consistently with).</summary>
public static class BenchResults
{
    // The bench's row names of the schemes advise measures (per-token dynamic is not a bench row).
    private static readonly Dictionary<string, AdviceScheme> Rows = new(StringComparer.Ordinal)
    {
        ["W8A8 naive (no smoothing)"] = AdviceScheme.W8A8Naive,
        ["W8A8 SmoothQuant auto alpha"] = AdviceScheme.W8A8SmoothQuant,
        ["W4 RTN g128"] = AdviceScheme.W4Rtn,
        ["W4 AWQ g128"] = AdviceScheme.W4Awq,
    };

    /// <summary>Scheme -> the section's "logits error" (causal LMs) or "hidden-state error" (MiniLM) column.</summary>
    public static Dictionary<AdviceScheme, double> Errors(string section)
    {
        var lines = File.ReadAllLines(Path.Combine(CliHarness.RepoRoot(), "bench", "results.md"));
        int start = Array.IndexOf(lines, $"## {section}");
        Assert.True(start >= 0, $"bench/results.md has no section '## {section}'");
        var header = lines.Skip(start).First(l => l.StartsWith("| scheme", StringComparison.Ordinal)).Split('|').Select(c => c.Trim()).ToList();
        int column = header.FindIndex(c => c is "logits error" or "hidden-state error");
        Assert.True(column > 0, $"section {section} has no error column");
        var result = new Dictionary<AdviceScheme, double>();
        foreach (var line in lines.Skip(start + 1).TakeWhile(l => !l.StartsWith("## ", StringComparison.Ordinal)))
        {
            var cells = line.Split('|').Select(c => c.Trim()).ToList();
            if (cells.Count > column && Rows.TryGetValue(cells[1], out var scheme))
                result[scheme] = double.Parse(cells[column], CultureInfo.InvariantCulture);
        }
        Assert.Equal(Rows.Count, result.Count);
        return result;
    }
}
