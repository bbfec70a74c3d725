using System.Diagnostics;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.Reliability;

/// <summary>
/// Ctrl-C in the middle of a pass: the built CLI runs as a child process (`dotnet onnxquant.dll`), gets SIGINT once it is
/// demonstrably inside the pass (its spill file, open but nameless, has data), and must exit with 130 leaving the
/// output folder empty — no model, no data file, no temporary file — and the input byte-identical.
/// The child starts with SIGINT and SIGTERM at their default action, as under an interactive shell: a shell that runs the
/// suite in the background (`cmd &`, some CI runners) leaves SIGINT ignored, children inherit that, and .NET rightly
/// keeps an inherited "ignore" — the child then ran to completion and exited 0. The test runs alone and watches the child
/// from a dedicated thread so the signal lands early in the pass.
/// </summary>
[Collection(nameof(RunsAlone))]
public sealed class InterruptTests
{
    /// <summary>
    /// About 160 MB of fp16 weights, 42 linears: seconds of W4 quantization after the first spilled tensor, so the
    /// signal lands mid-pass. (A child killed by the signal would also exit 130: the "interrupted" message tells the
    /// handled case apart.)
    /// </summary>
    private static readonly StreamedLlamaOptions Size = new() { Layers = 6, Hidden = 1024, Heads = 8, Intermediate = 2816, Vocab = 4096 };

    [Theory]
    [InlineData("INT")]
    [InlineData("TERM")]
    public async Task Signal_during_a_pass_exits_130_and_leaves_no_output(string signal)
    {
        using var dir = new TempFolder();
        string model = StreamedLlama.Write(Size, dir.File("in"));
        string outFolder = dir.File("out");
        Directory.CreateDirectory(outFolder);
        var before = BadInputCorpusTests.Snapshot(Path.GetDirectoryName(model)!);

        using var child = StartCli("awq", model, "--method", "rtn", "--no-verify", "-o", Path.Combine(outFolder, "q.onnx"));
        var stderr = child.StandardError.ReadToEndAsync();
        var stdout = child.StandardOutput.ReadToEndAsync();
        bool inPass = await WaitForSpillDataOnOwnThread(child, outFolder, TimeSpan.FromSeconds(60));
        if (!inPass)
        {
            await child.WaitForExitAsync();
            Assert.Fail($"the child never reached the pass (exit {child.ExitCode}): {await stderr}");
        }
        Signal(child.Id, signal);
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
            await child.WaitForExitAsync(timeout.Token);
        string error = await stderr;

        Assert.True(child.ExitCode == (int)ExitCode.Interrupted, $"exit {child.ExitCode}; stderr: {error}");
        Assert.Contains("interrupted", error);
        Assert.DoesNotContain("   at ", error);
        Assert.Equal("", await stdout);
        Assert.Empty(Directory.GetFileSystemEntries(outFolder));
        Assert.Equal(before, BadInputCorpusTests.Snapshot(Path.GetDirectoryName(model)!));
    }

    /// <summary>
    /// `dotnet onnxquant.dll ARGS` from the test's own output folder (the CLI project is referenced), through coreutils'
    /// `env --default-signal` so an ignored SIGINT/SIGTERM in this process is not inherited.
    /// </summary>
    private static Process StartCli(params string[] args)
    {
        string cli = Path.Combine(AppContext.BaseDirectory, "onnxquant.dll");
        Assert.True(File.Exists(cli), $"{cli} is missing");
        var start = new ProcessStartInfo("env")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("--default-signal=INT,TERM");
        start.ArgumentList.Add("dotnet");
        start.ArgumentList.Add(cli);
        foreach (var a in args)
            start.ArgumentList.Add(a);
        return Process.Start(start) ?? throw new InvalidOperationException("cannot start dotnet");
    }

    private static Task<bool> WaitForSpillDataOnOwnThread(Process child, string outFolder, TimeSpan timeout) =>
        Task.Factory.StartNew(() => WaitForSpillData(child, outFolder, timeout), CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);

    // The spill file has no name (O_TMPFILE, or unlinked at birth), so only the child's open descriptors show it: a
    // file in the output folder, "(deleted)", with a size.
    private static bool WaitForSpillData(Process child, string outFolder, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout && !child.HasExited)
        {
            try
            {
                foreach (var fd in Directory.GetFiles($"/proc/{child.Id}/fd"))
                {
                    var target = new FileInfo(fd).LinkTarget;
                    if (target is not null && target.StartsWith(outFolder + "/", StringComparison.Ordinal) && target.EndsWith(" (deleted)", StringComparison.Ordinal)
                        && new FileInfo(fd).Length > 0)
                        return true;
                }
            }
            catch (IOException)
            {
                // the process ended or a descriptor closed while listing
            }
            catch (UnauthorizedAccessException)
            {
            }
            Thread.Sleep(5);
        }
        return false;
    }

    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start("kill", $"-{signal} {pid}");
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }
}

/// <summary>Tests that time a child process: xunit runs this collection after the parallel ones, on its own.</summary>
[CollectionDefinition(nameof(RunsAlone), DisableParallelization = true)]
public sealed class RunsAlone
{
}
