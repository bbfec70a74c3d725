namespace OnnxQuant.Tests.Cli;

/// <summary>
/// The CLI as a user gets it, run with its defaults from a folder outside the repository on a model copied there
/// (models/tiny-llama): `smooth`, `awq` and `eval --reference` must find their default texts beside the binary, exit 0,
/// write their model and print the held-out figures (#15: the held-out text used to be looked up in the repository).
/// </summary>
public sealed class InstalledCliTests(InstalledCli installed) : IClassFixture<InstalledCli>
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(3);

    [Theory]
    [InlineData("build")]
    [InlineData("publish")]
    public void Defaults_run_from_a_folder_outside_the_repository(string layout)
    {
        string cli = Path.Combine(installed.Folder(layout), "onnxquant.dll");
        Assert.True(File.Exists(Path.Combine(installed.Folder(layout), "data", "emma.txt")), $"{layout}: data/emma.txt is not beside the binary");
        Assert.True(File.Exists(Path.Combine(installed.Folder(layout), "data", "persuasion.txt")), $"{layout}: data/persuasion.txt is not beside the binary");
        string work = UserFolder(layout);

        var smooth = InstalledCli.Run(work, Limit, "dotnet", cli, "smooth", "model.onnx");
        AssertOk("smooth", smooth);
        Assert.True(File.Exists(Path.Combine(work, "model.sq.onnx")), $"model.sq.onnx is missing; stderr: {smooth.Error}");
        Assert.Contains("held-out check: 16 samples, 4096 tokens of persuasion.txt", Flat(smooth.Out));
        Assert.Matches(@"perplexity\s+\d+\.\d{3}\s+\d+\.\d{3}", smooth.Out);
        Assert.Contains("of emma.txt", smooth.Out);

        var awq = InstalledCli.Run(work, Limit, "dotnet", cli, "awq", "model.onnx");
        AssertOk("awq", awq);
        Assert.True(File.Exists(Path.Combine(work, "model.awq.onnx")), $"model.awq.onnx is missing; stderr: {awq.Error}");
        Assert.Matches(@"held-out \(persuasion\.txt, 16 samples, 4096 tokens, \w+\): relative error of 'logits' \d\.\d{4}, perplexity \d+\.\d\d -> \d+\.\d\d", awq.Out);

        // The default text, cut to its first 2048 tokens: the whole of Persuasion takes a minute per model on two cores.
        var eval = InstalledCli.Run(work, Limit, "dotnet", cli, "eval", "model.awq.onnx", "--reference", "model.onnx", "--max-tokens", "2048");
        AssertOk("eval", eval);
        Assert.Contains("on persuasion.txt", eval.Out);
        Assert.Matches(@"reference perplexity\s+\d+\.\d{3}", eval.Out);
        Assert.Matches(@"scored tokens\s+\d+ of 2048", eval.Out);
    }

    /// <summary>`dotnet run --project .../src/OnnxQuant.Cli -- eval model.onnx` from any folder finds its default text.</summary>
    [Fact]
    public void The_dotnet_run_form_works_from_any_folder()
    {
        string work = UserFolder("dotnet-run");
        string project = Path.Combine(CliHarness.RepoRoot(), "src", "OnnxQuant.Cli");

        var eval = InstalledCli.Run(work, Limit, "dotnet", "run", "--no-build", "-c", InstalledCli.Configuration, "--project", project,
            "--", "eval", "model.onnx", "--max-tokens", "1024");

        AssertOk("dotnet run ... eval", eval);
        Assert.Contains("on persuasion.txt", eval.Out);
        Assert.Matches(@"perplexity\s+\d+\.\d{3}", eval.Out);
    }

    /// <summary>
    /// An installation that lost data/persuasion.txt: `smooth` keeps its model and warns (exit 0), `eval` has nothing to
    /// measure and says which file is missing and which option replaces it (exit 3).
    /// </summary>
    [Fact]
    public void Without_its_held_out_text_an_installation_still_keeps_what_it_writes()
    {
        string broken = Path.Combine(installed.Root, "no-persuasion");
        TempFolder.CopyFolder(installed.Folder("build"), broken);
        File.Delete(Path.Combine(broken, "data", "persuasion.txt"));
        string cli = Path.Combine(broken, "onnxquant.dll");
        string work = UserFolder("no-persuasion");

        var smooth = InstalledCli.Run(work, Limit, "dotnet", cli, "smooth", "model.onnx", "--samples", "4", "--seq-len", "64");
        Assert.True(smooth.ExitCode == 0, $"smooth exited {smooth.ExitCode}; stderr: {smooth.Error}");
        Assert.True(File.Exists(Path.Combine(work, "model.sq.onnx")), $"model.sq.onnx was taken back; stderr: {smooth.Error}");
        string warning = Flat(smooth.Error);
        Assert.Contains($"warning: verification did not run: {Path.Combine(broken, "data", "persuasion.txt")}: the default held-out text is missing", warning);
        Assert.Contains("--verify-data", warning);
        Assert.Contains("held-out check: did not run:", smooth.Out);

        var eval = InstalledCli.Run(work, Limit, "dotnet", cli, "eval", "model.onnx");
        Assert.True(eval.ExitCode == 3, $"eval exited {eval.ExitCode}; stderr: {eval.Error}");
        Assert.Contains("--data", Flat(eval.Error));
        Assert.Equal("", eval.Out);
    }

    /// <summary>A fresh folder holding the model and its tokenizer, with no repository (models/text) anywhere above it.</summary>
    private string UserFolder(string name)
    {
        string work = Path.Combine(installed.Root, name + "-user");
        Directory.CreateDirectory(work);
        for (var dir = new DirectoryInfo(work); dir is not null; dir = dir.Parent)
            Assert.False(Directory.Exists(Path.Combine(dir.FullName, "models", "text")), $"{dir.FullName} holds models/text: the test would not be outside a repository");
        foreach (var file in new[] { "model.onnx", "vocab.json", "merges.txt" })
            File.Copy(Path.Combine(CliHarness.RepoRoot(), "models", "tiny-llama", file), Path.Combine(work, file));
        return work;
    }

    private static void AssertOk(string what, InstalledCli.Result result)
    {
        Assert.True(result.ExitCode == 0, $"{what} exited {result.ExitCode}\nstdout: {result.Out}\nstderr: {result.Error}");
        Assert.DoesNotContain("warning:", result.Error);
        Assert.DoesNotContain("error:", result.Error);
    }

    // Spectre wraps a long table title over lines; joined, it reads as one sentence again.
    private static string Flat(string text) => string.Join(" ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
