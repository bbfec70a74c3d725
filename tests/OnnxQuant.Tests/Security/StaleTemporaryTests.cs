using System.Diagnostics;
using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.Tests.Cli;
using OnnxQuant.Tests.Fixtures;

namespace OnnxQuant.Tests.Security;

/// <summary>Issue 25: a run killed during its save leaves temporaries that the next run writing that output removes.</summary>
public sealed class StaleTemporaryTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private static readonly FixtureOptions Model =
        new() { Family = FixtureFamily.TorchLlama, Layers = 4, Hidden = 256, Heads = 4, Intermediate = 1024, Vocab = 4096, Seed = 6 };

    private static int DeadPid()
    {
        using var process = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        process.WaitForExit();
        return process.Id;
    }

    [Fact]
    public void Temporaries_of_dead_processes_for_this_output_go_and_every_other_file_stays()
    {
        int dead = DeadPid();
        string guid = Guid.NewGuid().ToString("N");
        string[] stale = [$"out.onnx.tmp-{dead}-{guid}", $"out.onnx.data.tmp-{dead}-{guid}"];
        string[] kept = [$"out.onnx.tmp-{Environment.ProcessId}-{guid}", $"other.onnx.tmp-{dead}-{guid}", "out.onnx.tmp-notes", $"out.onnx.tmp-{dead}-short"];
        foreach (var name in stale.Concat(kept))
            File.WriteAllText(_temp.File(name), "x");

        Assert.Equal(2, StaleTemporaries.Remove(_temp.File("out.onnx")));
        Assert.Equal(kept.Order(StringComparer.Ordinal), _temp.FileNames().Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_save_killed_at_any_point_leaves_nothing_once_the_output_is_written_again()
    {
        string model = FixtureModels.Save(Model, _temp.Path);
        string output = _temp.File("out.onnx");
        string cli = Path.Combine(CliHarness.RepoRoot(), "src", "OnnxQuant.Cli", "bin", InstalledCli.Configuration, "net10.0", "onnxquant.dll");
        var leftovers = new List<string>();
        foreach (int delayMs in new[] { 700, 1400, 2100, 2800 })
        {
            var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in new[] { cli, "awq", model, "--method", "rtn", "--no-verify", "-o", output })
                start.ArgumentList.Add(a);
            using var process = Process.Start(start)!;
            Thread.Sleep(delayMs);
            if (!process.HasExited)
                process.Kill();   // SIGKILL: no handler runs
            process.WaitForExit();
            leftovers.AddRange(Directory.GetFiles(_temp.Path, "out.onnx*.tmp-*").Select(f => Path.GetFileName(f)!));
        }

        // Whatever the kills left, one stale temporary for certain, as a kill between the data file and the model leaves.
        File.WriteAllText(_temp.File($"out.onnx.data.tmp-{DeadPid()}-{Guid.NewGuid():N}"), "partial");
        var again = InstalledCli.Run(_temp.Path, TimeSpan.FromMinutes(3), "dotnet", cli, "awq", model, "--method", "rtn", "--no-verify", "-o", output);
        Assert.True(again.ExitCode == 0, again.Error);
        Assert.Empty(Directory.GetFiles(_temp.Path, "*.tmp-*"));
        using var written = ModelFile.Load(output);
        Assert.Equal(28, written.Graph.Nodes.Count(n => n.OpType == "MatMulNBits"));
        // Not an assertion on timing: the kills land wherever the run was, temporaries or not; the rerun cleans up either way.
        Console.WriteLine($"temporaries left by the kills: {leftovers.Distinct().Count()}");
    }
}
