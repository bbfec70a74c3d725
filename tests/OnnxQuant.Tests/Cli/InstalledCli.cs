using System.Diagnostics;
using System.Reflection;

namespace OnnxQuant.Tests.Cli;

/// <summary>
/// The CLI installed outside the repository, made once for <see cref="InstalledCliTests"/>: its build output copied to a
/// folder of its own (what `dotnet build -o DIR` gives a user) and `dotnet publish -o DIR` (what a tool package or a
/// container image holds). Both live under the system temp folder, deleted on dispose.
/// </summary>
public sealed class InstalledCli : IDisposable
{
    public InstalledCli()
    {
        Root = Path.Combine(Path.GetTempPath(), "onnxquant-installed", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Root);
        string repo = CliHarness.RepoRoot();
        string project = Path.Combine(repo, "src", "OnnxQuant.Cli");

        // The solution build (which this test assembly comes from) already put the CLI's output in its bin folder.
        string built = Path.Combine(project, "bin", Configuration, "net10.0");
        if (!File.Exists(Path.Combine(built, "onnxquant.dll")))
            throw new InvalidOperationException($"{built} holds no onnxquant.dll: build OnnxQuant.sln -c {Configuration} first");
        TempFolder.CopyFolder(built, Folder("build"));

        // --no-build: publish lays out what the solution build compiled (a second compile of src/ while the suite runs
        // is minutes on a loaded 2-core machine, and would race any other build of the same obj folders).
        var publish = Run(repo, TimeSpan.FromMinutes(5), "dotnet", "publish", Path.Combine(project, "OnnxQuant.Cli.csproj"), "-c", Configuration,
            "--no-build", "-o", Folder("publish"), "-nologo", "-clp:ErrorsOnly", "-nodeReuse:false");
        if (publish.ExitCode != 0)
            throw new InvalidOperationException($"dotnet publish exited {publish.ExitCode}: {publish.Out}\n{publish.Error}");
    }

    /// <summary>Release or Debug: whatever this test assembly was built as.</summary>
    public static string Configuration { get; } =
        typeof(InstalledCli).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";

    public string Root { get; }

    /// <summary>The installation of one layout, "build" or "publish".</summary>
    public string Folder(string layout) => Path.Combine(Root, layout);

    public sealed record Result(int ExitCode, string Out, string Error);

    /// <summary>Runs <paramref name="file"/> with <paramref name="args"/> in <paramref name="workingDirectory"/>; kills it past <paramref name="timeout"/>.</summary>
    public static Result Run(string workingDirectory, TimeSpan timeout, string file, params string[] args) =>
        Run(workingDirectory, timeout, file, new Dictionary<string, string>(), args);

    /// <summary>As above, with <paramref name="environment"/> added to the child's environment.</summary>
    public static Result Run(string workingDirectory, TimeSpan timeout, string file, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var start = new ProcessStartInfo(file)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (name, value) in environment)
            start.Environment[name] = value;
        foreach (var a in args)
            start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            return new Result(-1, stdout.Result, $"killed after {timeout.TotalSeconds} s\n{stderr.Result}");
        }
        process.WaitForExit(); // lets the redirected streams reach their end
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}
