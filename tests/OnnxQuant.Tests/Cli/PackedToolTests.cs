using System.Text.Json;
using System.Xml.Linq;
using OnnxQuant.IO;
using OnnxQuant.Analysis;

namespace OnnxQuant.Tests.Cli;

/// <summary>
/// The dotnet tool as a user gets it: `dotnet pack` (the CPU ONNX Runtime flavour, built in its own obj/ folders), then
/// `dotnet tool install --tool-path` from that local folder only (an isolated NuGet config: no gallery, no network),
/// then the installed `onnxquant`. Packed and installed once for the class (about a minute on two cores after the first build).
/// </summary>
public sealed partial class PackedToolTests(PackedToolTests.InstalledTool tool) : IClassFixture<PackedToolTests.InstalledTool>
{
    private static string TinyLlama => Path.Combine(CliHarness.RepoRoot(), "models", "tiny-llama", "model.onnx");

    [Fact]
    public void The_installed_tool_reports_the_version_of_Directory_Build_props()
    {
        var props = XDocument.Load(Path.Combine(CliHarness.RepoRoot(), "Directory.Build.props"));
        string expected = props.Descendants("Version").Single().Value;
        var run = tool.Run("--version");
        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Equal(expected, run.Out.Trim());
        Assert.True(File.Exists(Path.Combine(tool.Packages, $"OnnxQuant.Cli.{expected}.nupkg")));
        // Well under NuGet.org's 250 MB limit: the package carries the CPU ONNX Runtime, not the CUDA provider.
        Assert.InRange(new FileInfo(Path.Combine(tool.Packages, $"OnnxQuant.Cli.{expected}.nupkg")).Length, 1L << 20, 250L * 1000 * 1000);
    }

    [Fact]
    public void The_installed_tool_inspects_a_model_as_the_library_sees_it()
    {
        var run = tool.Run("inspect", TinyLlama, "--json");
        Assert.True(run.ExitCode == 0, run.Error);
        using var loaded = ModelFile.Load(TinyLlama);
        var expected = ModelSummary.Create(loaded);
        using var json = JsonDocument.Parse(run.Out);
        Assert.Equal(expected.NodeCount, json.RootElement.GetProperty("node_count").GetInt32());
        Assert.Equal(expected.ParameterCount, json.RootElement.GetProperty("parameter_count").GetInt64());
        Assert.Equal(expected.Linears.Count, json.RootElement.GetProperty("linears").GetArrayLength());
        var text = tool.Run("inspect", TinyLlama);
        Assert.Contains($"{expected.NodeCount} nodes:", text.Out);
    }

    [Fact]
    public void The_bundled_cpu_runtime_and_a_runtime_named_by_the_variable_give_the_same_perplexity()
    {
        string[] eval = ["eval", TinyLlama, "--max-tokens", "300", "--context", "64", "--device", "cpu", "--json"];
        var bundled = tool.Run(eval);
        Assert.True(bundled.ExitCode == 0, bundled.Error);
        double perplexity = JsonDocument.Parse(bundled.Out).RootElement.GetProperty("perplexity").GetProperty("perplexity").GetDouble();
        Assert.InRange(perplexity, 1.0, 1e6);

        // The test build carries the CUDA-enabled ONNX Runtime (Microsoft.ML.OnnxRuntime.Gpu.Linux): what a user points the tool at.
        string cudaBuild = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libonnxruntime.so");
        Assert.True(File.Exists(cudaBuild), $"{cudaBuild} is missing: the test build should carry the GPU ONNX Runtime");
        var named = tool.Run(new Dictionary<string, string> { ["ONNXQUANT_ORT_LIBRARY"] = cudaBuild }, eval);
        Assert.True(named.ExitCode == 0, named.Error);
        Assert.Contains($"using ONNX Runtime from {cudaBuild}", named.Error);
        double other = JsonDocument.Parse(named.Out).RootElement.GetProperty("perplexity").GetProperty("perplexity").GetDouble();
        Assert.Equal(perplexity, other, 4);

        // A file that is not a library: refused up front, naming the variable.
        var bogus = tool.Run(new Dictionary<string, string> { ["ONNXQUANT_ORT_LIBRARY"] = TinyLlama }, eval);
        Assert.Equal(3, bogus.ExitCode);
        Assert.Contains("ONNXQUANT_ORT_LIBRARY", bogus.Error);
    }

    /// <summary>The tool packed from this checkout and installed into a temporary tool path.</summary>
    public sealed class InstalledTool : IDisposable
    {
        public InstalledTool()
        {
            Root = Path.Combine(Path.GetTempPath(), "onnxquant-tool", Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(Root);
            string repo = CliHarness.RepoRoot();
            Packages = Path.Combine(Root, "packages");
            var pack = InstalledCli.Run(repo, TimeSpan.FromMinutes(10), "dotnet", "pack", Path.Combine(repo, "src", "OnnxQuant.Cli", "OnnxQuant.Cli.csproj"),
                "-c", "Release", "-o", Packages, "-nologo", "-clp:ErrorsOnly", "-nodeReuse:false");
            if (pack.ExitCode != 0)
                throw new InvalidOperationException($"dotnet pack exited {pack.ExitCode}: {pack.Out}\n{pack.Error}");
            // Only the local folder as a source: the install needs nothing from the gallery.
            string config = Path.Combine(Root, "nuget.config");
            File.WriteAllText(config, $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <clear />
                    <add key="local" value="{Packages}" />
                  </packageSources>
                </configuration>
                """);
            ToolPath = Path.Combine(Root, "tools");
            var install = InstalledCli.Run(Root, TimeSpan.FromMinutes(5), "dotnet", "tool", "install", "--tool-path", ToolPath, "--configfile", config,
                "--add-source", Packages, "OnnxQuant.Cli");
            if (install.ExitCode != 0)
                throw new InvalidOperationException($"dotnet tool install exited {install.ExitCode}: {install.Out}\n{install.Error}");
        }

        public string Root { get; }

        public string Packages { get; }

        public string ToolPath { get; }

        public InstalledCli.Result Run(params string[] args) => Run(new Dictionary<string, string>(), args);

        public InstalledCli.Result Run(Dictionary<string, string> environment, params string[] args) =>
            InstalledCli.Run(Root, TimeSpan.FromMinutes(3), Path.Combine(ToolPath, "onnxquant"), environment, args);

        /// <summary>The installed command run from <paramref name="folder"/>, as a user in their own folder runs it.</summary>
        public InstalledCli.Result RunIn(string folder, params string[] args) =>
            InstalledCli.Run(folder, TimeSpan.FromMinutes(5), Path.Combine(ToolPath, "onnxquant"), args);

        public void Dispose()
        {
            try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
        }
    }
}
