using System.Text.Json;
using OnnxQuant.Calibrate.Sessions;
using Xunit;

namespace OnnxQuant.Tests.Cli;

/// <summary>
/// ONNXQUANT_NO_CPU_FALLBACK=1 (scripts/gpu-check.sh) disables ONNX Runtime's CPU fallback in CUDA sessions only: a CPU
/// session with it set must still open and give the same numbers (ONNX Runtime refuses a CPU-only session with that
/// setting, so applying it there would break every --device cpu run). A child process, so the variable never reaches
/// the other tests' sessions.
/// </summary>
public sealed class NoCpuFallbackTests
{
    [Fact]
    public void The_variable_leaves_cpu_sessions_alone()
    {
        Assert.Equal("ONNXQUANT_NO_CPU_FALLBACK", SessionFactory.NoCpuFallbackVariable);
        string repo = CliHarness.RepoRoot();
        string dll = Path.Combine(repo, "src", "OnnxQuant.Cli", "bin", InstalledCli.Configuration, "net10.0", "onnxquant.dll");
        string[] args = [dll, "eval", Path.Combine(repo, "models", "austen-lm", "model.onnx"), "--device", "cpu", "--max-tokens", "600", "--json"];

        var plain = InstalledCli.Run(repo, TimeSpan.FromMinutes(3), "dotnet", args);
        var strict = InstalledCli.Run(repo, TimeSpan.FromMinutes(3), "dotnet",
            new Dictionary<string, string> { [SessionFactory.NoCpuFallbackVariable] = "1" }, args);

        Assert.True(plain.ExitCode == 0, plain.Out + plain.Error);
        Assert.True(strict.ExitCode == 0, strict.Out + strict.Error);
        double Perplexity(string json) => JsonDocument.Parse(json).RootElement.GetProperty("perplexity").GetProperty("perplexity").GetDouble();
        Assert.Equal("cpu", JsonDocument.Parse(strict.Out).RootElement.GetProperty("device").GetString());
        Assert.InRange(Perplexity(plain.Out), 100, 400);
        Assert.Equal(Perplexity(plain.Out), Perplexity(strict.Out));
    }
}
