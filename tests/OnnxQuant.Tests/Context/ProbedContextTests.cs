using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.Context;

/// <summary>
/// A model whose structure hides its context limit (the RoPE tables are overridable initializers, so no constant table
/// shows): the first calibration run fails, the probe finds the limit, calibration and verification run at it; and
/// ONNX Runtime's own log lines never reach the terminal (issue 11, #1 and #5), which only a real process can show.
/// </summary>
public sealed class ProbedContextTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void A_limit_the_structure_hides_is_probed_and_ort_logs_nothing_of_its_own()
    {
        string folder = ContextCliTests.WithTinyLlamaTokenizer(_temp.File("hidden"));
        string model = Path.Combine(folder, "model.onnx");
        using (var built = FixtureModels.BuildModel(new FixtureOptions { RopeRows = 96, Vocab = 4096 }))
        {
            foreach (var table in new[] { "model.rotary_emb.cos_cached", "model.rotary_emb.sin_cached" })
                built.Graph.Inputs.Add(new Onnx.ValueInfoProto { Name = table, Type = new Onnx.TypeProto { TensorType = new Onnx.TypeProto.Types.Tensor { ElemType = 1 } } });
            ModelFile.Save(built, model);
        }
        string cli = Path.Combine(CliHarness.RepoRoot(), "src", "OnnxQuant.Cli", "bin", InstalledCli.Configuration, "net10.0", "onnxquant.dll");

        var result = InstalledCli.Run(folder, TimeSpan.FromMinutes(3), "dotnet", cli, "smooth", model, "--samples", "8", "--device", "cpu", "--json");

        Assert.True(result.ExitCode == 0, result.Error);
        string error = string.Join(" ", result.Error.Split('\n').Select(l => l.Trim()));
        Assert.Contains($"note: {model} runs at most 96 tokens per sequence (ONNX Runtime runs it at 96 tokens but not at 97); calibrating on 96 tokens", error);
        Assert.Contains("calibrating on emma.txt: 8 x 96 tokens", error);
        Assert.Contains("verifying on windows of 96 tokens", error);
        Assert.DoesNotContain("onnxruntime", error);
        Assert.DoesNotContain("Status Message", error);
        Assert.DoesNotContain("[E:", error);
        Assert.Contains("\"tokens\": 1536", result.Out);
    }
}
