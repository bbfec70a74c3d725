using System.Text.RegularExpressions;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.Support;

/// <summary>Code comments cite docs/architecture.md by section name; every cited section must exist there.</summary>
public partial class DocCitationTests
{
    [GeneratedRegex("docs/architecture\\.md, \"([^\"]+)\"")]
    private static partial Regex Citation();

    [Fact]
    public void EverySectionTheCodeCitesIsAHeadingOfArchitectureMd()
    {
        string root = CliHarness.RepoRoot();
        var headings = File.ReadAllLines(Path.Combine(root, "docs", "architecture.md"))
            .Where(l => l.StartsWith('#')).Select(l => l.TrimStart('#').Trim().Trim('`')).ToHashSet(StringComparer.Ordinal);
        var sep = Path.DirectorySeparatorChar;
        var cited = new[] { "src", "tests", "bench", "tools" }
            .Select(d => Path.Combine(root, d)).Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateFiles(d, "*.cs", SearchOption.AllDirectories))
            .Where(f => !f.Contains($"{sep}obj{sep}") && !f.Contains($"{sep}bin{sep}") && !f.Contains($"{sep}node_modules{sep}"))
            .SelectMany(f => Citation().Matches(File.ReadAllText(f)).Select(m => (File: Path.GetRelativePath(root, f), Section: m.Groups[1].Value)))
            .ToList();

        Assert.True(cited.Count >= 15, $"only {cited.Count} citations found");
        var dangling = cited.Where(c => !headings.Contains(c.Section)).Select(c => $"{c.File}: \"{c.Section}\"").ToList();
        Assert.True(dangling.Count == 0, $"sections missing from docs/architecture.md: {string.Join("; ", dangling)}");
    }
}
