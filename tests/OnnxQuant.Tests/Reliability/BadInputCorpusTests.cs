using System.Security.Cryptography;
using OnnxQuant.IO;
using OnnxQuant.Statistics;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.Reliability;

/// <summary>
/// Runs every case of <see cref="BadInputCorpus"/> through every command in-process and checks the table: the exit code,
/// a one-paragraph error naming the file and the problem (no stack trace), no output file and no leftover temporary
/// file, and every input byte-identical afterwards (SHA-256 of the whole case folder before and after).
/// </summary>
public sealed class BadInputCorpusTests
{
    public static TheoryData<string, CorpusCommand> Rows()
    {
        var rows = new TheoryData<string, CorpusCommand>();
        var available = AvailableCommands();
        foreach (var c in BadInputCorpus.Cases)
            foreach (var (command, expect) in c.Expect)
                if (expect.Applies && available.Contains(command))
                    rows.Add(c.Name, command);
        return rows;
    }

    [Theory]
    [MemberData(nameof(Rows))]
    public void Command_handles_the_case_as_the_table_says(string caseName, CorpusCommand command)
    {
        var corpusCase = BadInputCorpus.Cases.Single(c => c.Name == caseName);
        var expect = corpusCase.Expect[command];
        using var temp = new TempFolder();
        var files = corpusCase.Materialize(temp.Path);
        string? output = CorpusInvocation.OutputOf(command, files);
        var before = Snapshot(files.Folder);

        var result = CliHarness.Run(CorpusInvocation.Args(command, files));

        string shown = $"{caseName} / {CorpusInvocation.Verb(command)}: exit {result.ExitCode}\nstdout: {result.Out}\nstderr: {result.Error}";
        Assert.True((int)expect.Code == result.ExitCode, $"expected exit {(int)expect.Code} ({expect.Code}); {shown}");
        Assert.DoesNotContain("internal error", result.Error);
        Assert.DoesNotContain("   at ", result.Error); // no stack trace without --verbose
        var after = Snapshot(files.Folder);
        if (expect.Code == ExitCode.Ok)
        {
            foreach (var fragment in expect.Fragments)
                Assert.True(result.Out.Contains(fragment, StringComparison.Ordinal), $"stdout lacks '{fragment}'; {shown}");
            foreach (var (file, hash) in before)
                Assert.True(after.TryGetValue(file, out var now) && now == hash, $"input {file} changed or vanished; {shown}");
            if (output is not null)
                AssertValidOutput(command, output, shown);
            var extra = after.Keys.Except(before.Keys).Where(f => f != Relative(files.Folder, output) && f != Relative(files.Folder, output + ".data")).ToList();
            Assert.True(extra.Count == 0, $"left behind: {string.Join(", ", extra)}; {shown}");
            return;
        }

        // One paragraph at the end of stderr (progress lines may come before it): "error: ..." then indented
        // continuation lines; nothing on stdout.
        var lines = result.Error.TrimEnd().Split('\n');
        Assert.Equal(1, lines.Count(l => l.StartsWith("error:", StringComparison.Ordinal)));
        var paragraph = lines.SkipWhile(l => !l.StartsWith("error:", StringComparison.Ordinal)).ToArray();
        Assert.All(paragraph.Skip(1), l => Assert.StartsWith("  ", l));
        Assert.Equal("", result.Out);
        string flat = string.Join(" ", paragraph.Select(l => l.Trim()));
        foreach (var fragment in expect.Fragments)
            Assert.True(flat.Contains(fragment, StringComparison.Ordinal), $"error lacks '{fragment}'; {shown}");

        // Nothing written, nothing left behind, inputs untouched.
        Assert.Equal(before, after);
        if (output is not null && !IsInside(files.Folder, output))
            Assert.False(File.Exists(output), $"{output} was written; {shown}");
    }

    /// <summary>The table names an expectation for every command and case; the CLI has no command the corpus misses.</summary>
    [Fact]
    public void The_table_covers_every_case_and_every_command_of_the_cli()
    {
        Assert.True(BadInputCorpus.Cases.Count >= 20);
        Assert.Equal(BadInputCorpus.Cases.Count, BadInputCorpus.Cases.Select(c => c.Name).Distinct().Count());
        foreach (var c in BadInputCorpus.Cases)
            Assert.Equal(Enum.GetValues<CorpusCommand>().Order(), c.Expect.Keys.Order());
        var help = CliHarness.Run("--help");
        var listed = help.Out.Split('\n').Select(l => l.Trim().Split(' ')[0]).Where(w => w.Length > 0).ToHashSet();
        foreach (var verb in new[] { "inspect", "diff", "calibrate", "smooth", "awq", "eval" })
            if (listed.Contains(verb))
                Assert.Contains(Enum.GetValues<CorpusCommand>(), c => CorpusInvocation.Verb(c) == verb);
        Assert.Contains("inspect", listed);
    }

    private static HashSet<CorpusCommand> AvailableCommands()
    {
        var help = CliHarness.Run("--help").Out.Split('\n').Select(l => l.Trim().Split(' ')[0]).ToHashSet();
        return Enum.GetValues<CorpusCommand>().Where(c => help.Contains(CorpusInvocation.Verb(c))).ToHashSet();
    }

    private static void AssertValidOutput(CorpusCommand command, string output, string shown)
    {
        Assert.True(File.Exists(output), $"no output at {output}; {shown}");
        if (command == CorpusCommand.Calibrate)
            Assert.NotEmpty(StatsFile.Read(output).Tensors);
        else
        {
            using var model = ModelFile.Load(output);
            Assert.Contains(model.Graph.Nodes, n => n.OpType is "MatMulNBits" or "MatMulInteger");
        }
    }

    /// <summary>Relative path -> SHA-256 of every file under <paramref name="folder"/>.</summary>
    public static SortedDictionary<string, string> Snapshot(string folder)
    {
        var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
            map[Path.GetRelativePath(folder, file)] = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(file)));
        return map;
    }

    private static bool IsInside(string folder, string path) =>
        Path.GetFullPath(path).StartsWith(Path.GetFullPath(folder) + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    private static string? Relative(string folder, string? path) => path is null ? null : Path.GetRelativePath(folder, path);
}
