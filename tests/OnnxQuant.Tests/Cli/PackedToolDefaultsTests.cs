using System.Text.Json;
using OnnxQuant.Analysis;
using OnnxQuant.IO;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Cli;

/// <summary>
/// Every command of the installed tool with nothing but the model, from a folder of the user's: the defaults a new
/// user meets, on the bundled CPU-only ONNX Runtime (where `--device auto` must fall back, not crash).
/// </summary>
public sealed partial class PackedToolTests
{
    private const string CpuFallback = "note: CUDA is not available (this ONNX Runtime is a CPU-only build); running on the CPU";

    [Fact]
    public void Every_command_runs_on_tiny_llama_with_its_defaults()
    {
        using var work = new TempFolder();
        string models = Path.Combine(CliHarness.RepoRoot(), "models");
        foreach (var file in new[] { "model.onnx", "vocab.json", "merges.txt" })
            File.Copy(Path.Combine(models, "tiny-llama", file), work.File(file));
        File.Copy(Path.Combine(models, "recipes", "tiny-llama-mixed.json"), work.File("mixed.json"));
        using var input = ModelFile.Load(work.File("model.onnx"));
        var table = LinearAnalysis.Analyze(input.Graph, new LinearSelection());
        int quantizable = table.Quantizable.Count();

        var inspect = Ok(tool.RunIn(work.Path, "inspect", "model.onnx"), "inspect", onnxRuntime: false);
        Assert.Contains($"{quantizable} MatMul quantizable", inspect.Out);

        Ok(tool.RunIn(work.Path, "calibrate", "model.onnx"), "calibrate");
        Assert.True(new FileInfo(work.File("model.calib")).Length > 1000, "calibrate wrote no statistics");

        var smooth = Ok(tool.RunIn(work.Path, "smooth", "model.onnx"), "smooth");
        Assert.Contains("top-1 agreement", smooth.Out);
        using (var sq = ModelFile.Load(work.File("model.sq.onnx")))
            Assert.Equal(quantizable, sq.Graph.Nodes.Count(n => n.OpType == "MatMulInteger"));

        Ok(tool.RunIn(work.Path, "awq", "model.onnx"), "awq");
        using (var w4 = ModelFile.Load(work.File("model.awq.onnx")))
            Assert.Equal(quantizable, w4.Graph.Nodes.Count(n => n.OpType == "MatMulNBits"));

        var eval = Ok(tool.RunIn(work.Path, "eval", "model.awq.onnx"), "eval");
        Assert.Matches(@"perplexity\s+\d+\.\d{3}", eval.Out);

        var diff = Ok(tool.RunIn(work.Path, "diff", "model.onnx", "model.sq.onnx", "--json"), "diff", onnxRuntime: false);
        using (var rows = JsonDocument.Parse(diff.Out))
            Assert.Equal(table.All.Count(c => c.Reason != KeepReason.ComputedWeight), rows.RootElement.GetProperty("linears").GetArrayLength());

        var advise = Ok(tool.RunIn(work.Path, "advise", "model.onnx", "--json"), "advise");
        using (var advice = JsonDocument.Parse(advise.Out))
            Assert.InRange(advice.RootElement.GetProperty("recommendation").GetProperty("expected_error").GetDouble(), 1e-6, 1.0);

        var run = Ok(tool.RunIn(work.Path, "run", "mixed.json", "model.onnx"), "run");
        Assert.Contains("(passed)", run.Out);
        Assert.True(File.Exists(work.File("model.mixed.onnx")), $"run wrote no model.mixed.onnx: {string.Join(", ", work.FileNames())}");
    }

    [ArtifactFact(Artifact.MiniLm)]
    public void Smooth_awq_and_eval_run_on_MiniLM_with_their_defaults()
    {
        using var work = new TempFolder();
        File.Copy(RequiredArtifact.MiniLmModel, work.File("model.onnx"));
        File.Copy(RequiredArtifact.MiniLmVocab, work.File("vocab.txt"));

        var smooth = Ok(tool.RunIn(work.Path, "smooth", "model.onnx", "--json"), "smooth");
        Assert.Contains("paragraph-sized windows for an encoder", smooth.Error);
        Assert.InRange(Cosine(smooth.Out), 0.99, 1.0);

        var awq = Ok(tool.RunIn(work.Path, "awq", "model.onnx", "--json"), "awq");
        Assert.InRange(Cosine(awq.Out), 0.97, 1.0);

        var eval = Ok(tool.RunIn(work.Path, "eval", "model.awq.onnx", "--reference", "model.onnx"), "eval");
        Assert.Matches(@"embedding cosine \(mean / min\)\s+0\.9\d{4} / 0\.\d{5}", eval.Out);
    }

    [ArtifactFact(Artifact.GenAiModel)]
    public void Smooth_and_awq_take_a_GenAI_folder_with_their_defaults()
    {
        using var work = new TempFolder();
        TempFolder.CopyFolder(RequiredArtifact.GenAiModel, Path.Combine(work.Path, "austen"));

        Ok(tool.RunIn(work.Path, "smooth", "austen"), "smooth");
        Ok(tool.RunIn(work.Path, "awq", "austen"), "awq");

        foreach (var (folder, op) in new[] { ("austen-sq", "MatMulInteger"), ("austen-awq", "MatMulNBits") })
        {
            Assert.True(File.Exists(Path.Combine(work.Path, folder, "genai_config.json")), $"{folder} has no genai_config.json");
            using var model = ModelFile.Load(Path.Combine(work.Path, folder, "model.onnx"));
            Assert.True(model.Graph.Nodes.Count(n => n.OpType == op) >= 4, $"{folder}/model.onnx has too few {op} nodes");
        }
    }

    // Exit 0 with no error, warning or internal error; commands that run ONNX Runtime say once that they fell back to the CPU.
    private static InstalledCli.Result Ok(InstalledCli.Result run, string what, bool onnxRuntime = true)
    {
        Assert.True(run.ExitCode == 0, $"{what} exited {run.ExitCode}\nstdout: {run.Out}\nstderr: {run.Error}");
        Assert.DoesNotContain("internal error", run.Error);
        Assert.DoesNotContain("error:", run.Error);
        if (onnxRuntime)
            Assert.Contains(CpuFallback, run.Error);
        return run;
    }

    private static double Cosine(string json) =>
        JsonDocument.Parse(json).RootElement.GetProperty("verification").GetProperty("mean_cosine").GetDouble();
}
