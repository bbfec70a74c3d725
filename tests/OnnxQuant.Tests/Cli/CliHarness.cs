using System.Text.Json;
using OnnxQuant.Cli;

namespace OnnxQuant.Tests.Cli;

/// <summary>Runs `onnxquant` in-process with captured stdout/stderr, exactly as a user would call it.</summary>
internal static class CliHarness
{
    public sealed record Result(int ExitCode, string Out, string Error)
    {
        public JsonElement Json() => JsonDocument.Parse(Out).RootElement;
    }

    public static Result Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(args, stdout, stderr);
        return new Result(code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Text with every run of white space as one space: errors are wrapped at the terminal's width.</summary>
    public static string Flat(string text) => System.Text.RegularExpressions.Regex.Replace(text, @"\s+", " ");

    /// <summary>The repository root (the folder holding OnnxQuant.sln), found upwards from the test binaries.</summary>
    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "OnnxQuant.sln")))
                return dir.FullName;
        throw new InvalidOperationException($"no OnnxQuant.sln above {AppContext.BaseDirectory}");
    }
}
