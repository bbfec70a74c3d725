using System.Diagnostics;
using System.Text.RegularExpressions;
using OnnxQuant.Fuzz;
using OnnxQuant.Tests.Cli;
using OnnxQuant.Tests.Fixtures;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Security;

/// <summary>
/// Issue 25: the readers' fuzz harnesses. Every seed is accepted (so the fuzzer starts deep in each reader), every input
/// the fuzzer once crashed on is now a clean refusal, and a short afl-fuzz run of every harness finds nothing.
/// </summary>
public sealed partial class FuzzTests
{
    private static string FuzzFolder(string kind) => Path.Combine(CliHarness.RepoRoot(), "tests", "OnnxQuant.Fuzz", kind);

    public static TheoryData<string> Targets() => [.. FuzzTargets.All.Keys];

    [Theory]
    [MemberData(nameof(Targets))]
    public void Every_seed_of_a_harness_is_accepted(string target)
    {
        var seeds = Directory.GetFiles(Path.Combine(FuzzFolder("corpus"), target));
        Assert.NotEmpty(seeds);
        using var scratch = new Scratch();
        foreach (var seed in seeds)
            Assert.True(FuzzTargets.Run(target, File.ReadAllBytes(seed), scratch) is null, $"{seed} was refused");
    }

    public static TheoryData<string, string> Regressions()
    {
        var data = new TheoryData<string, string>();
        foreach (var folder in Directory.GetDirectories(FuzzFolder("regressions")))
            foreach (var file in Directory.GetFiles(folder))
                data.Add(Path.GetFileName(folder), Path.GetFileName(file));
        return data;
    }

    [Theory]
    [MemberData(nameof(Regressions))]
    public void An_input_the_fuzzer_crashed_on_is_refused_as_bad_input(string target, string name)
    {
        using var scratch = new Scratch();
        var refusal = FuzzTargets.Run(target, File.ReadAllBytes(Path.Combine(FuzzFolder("regressions"), target, name)), scratch);

        Assert.NotNull(refusal);
        // A recipe's content is usage (exit 2, README); every other input's is bad input (exit 3).
        Assert.Equal(target == "recipe" ? ExitCode.Usage : ExitCode.BadInput, refusal.ExitCode);
    }

    [ArtifactFact(Artifact.Afl)]
    public void A_short_afl_run_of_every_harness_finds_no_crash_and_no_hang()
    {
        RequiredArtifact.Require(Artifact.Afl);
        using var temp = new TempFolder();
        var start = new ProcessStartInfo("bash", ["scripts/fuzz.sh", "5"])
        {
            WorkingDirectory = CliHarness.RepoRoot(),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            // Its own build and findings, so a long run in artifacts/fuzz is never disturbed.
            Environment = { ["FUZZ_OUT"] = temp.Path },
        };
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();

        Assert.True(process.ExitCode == 0, $"scripts/fuzz.sh 5 exited {process.ExitCode}:\n{stdout}\n{stderr.Result}");
        var lines = StatsLine().Matches(stdout).ToDictionary(m => m.Groups["target"].Value);
        Assert.Equal(FuzzTargets.All.Keys.Order(), lines.Keys.Order());
        Assert.All(lines.Values, m =>
        {
            Assert.True(long.Parse(m.Groups["execs"].Value) >= 100, m.Value);
            Assert.Equal("0", m.Groups["crashes"].Value);
            Assert.Equal("0", m.Groups["hangs"].Value);
        });
    }

    [GeneratedRegex(@"^(?<target>[\w-]+): (?<execs>\d+) executions, \d+ paths, (?<crashes>\d+) crashes, (?<hangs>\d+) hangs", RegexOptions.Multiline)]
    private static partial Regex StatsLine();
}
