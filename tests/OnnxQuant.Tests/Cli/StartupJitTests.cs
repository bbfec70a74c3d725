using System.Diagnostics;

namespace OnnxQuant.Tests.Cli;

/// <summary>The built CLI records a JIT profile per command in the cache folder, and not when told not to.</summary>
public class StartupJitTests
{
    [Fact]
    public void Each_command_records_its_profile_in_the_cache_folder()
    {
        using var cache = new TempFolder();
        Assert.Equal(0, RunCli(cache.Path, optOut: false, "--version"));
        Assert.Equal(0, RunCli(cache.Path, optOut: false, "inspect", Path.Combine(CliHarness.RepoRoot(), "models", "tiny-llama", "model.onnx")));

        string folder = Path.Combine(cache.Path, "onnxquant");
        Assert.Equal(["inspect.jitprofile", "other.jitprofile"], Directory.GetFiles(folder).Select(f => Path.GetFileName(f)).Order().ToArray());
        // The inspect run compiled far more methods than printing the version did.
        Assert.True(new FileInfo(Path.Combine(folder, "inspect.jitprofile")).Length > 2 * new FileInfo(Path.Combine(folder, "other.jitprofile")).Length);
    }

    [Fact]
    public void The_opt_out_leaves_the_cache_folder_alone()
    {
        using var cache = new TempFolder();
        Assert.Equal(0, RunCli(cache.Path, optOut: true, "--version"));
        Assert.Empty(Directory.GetFileSystemEntries(cache.Path));
    }

    [Fact]
    public void An_unwritable_cache_folder_does_not_fail_the_command()
    {
        using var dir = new TempFolder();
        string file = dir.File("not-a-folder");
        File.WriteAllText(file, "x"); // XDG_CACHE_HOME names a file: the profile folder cannot be created under it
        Assert.Equal(0, RunCli(file, optOut: false, "--version"));
    }

    private static int RunCli(string cacheHome, bool optOut, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "onnxquant.dll"));
        foreach (var a in args)
            start.ArgumentList.Add(a);
        start.Environment["XDG_CACHE_HOME"] = cacheHome;
        start.Environment["ONNXQUANT_NO_JIT_PROFILE"] = optOut ? "1" : "";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}: {error}");
        _ = output.Result;
        return process.ExitCode;
    }
}
