using OnnxQuant.Fixtures;
using OnnxQuant.Tests.Cli;
using OnnxQuant.Tests.Fixtures;

namespace OnnxQuant.Tests.Security;

/// <summary>
/// Issue 25: the decoder a genai_config.json names is read from inside its folder only, through any links, and its
/// rewrite lands inside -o under the same relative name; a refused config leaves no folder behind.
/// </summary>
public sealed class GenAiPathRuleTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private static readonly FixtureOptions Llama =
        new() { Family = FixtureFamily.TorchLlama, Layers = 1, Hidden = 64, Heads = 4, Intermediate = 128, Vocab = 128, Seed = 5 };

    private string Folder(string name, string decoderJson)
    {
        string folder = Path.Combine(_temp.Path, name);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "genai_config.json"), $$"""{ "model": { "decoder": { "filename": {{decoderJson}} } } }""");
        return folder;
    }

    private CliHarness.Result Rtn(string input, string output) =>
        CliHarness.Run("awq", input, "--method", "rtn", "--no-verify", "-o", output);

    [Fact]
    public void A_decoder_named_outside_the_folder_is_refused_and_nothing_is_written_beside_the_output()
    {
        FixtureModels.Save(Llama, Path.Combine(_temp.Path, "victim"));
        string input = Folder("in", "\"../victim/model.onnx\"");
        var run = Rtn(input, Path.Combine(_temp.Path, "a", "outdir"));
        Assert.Equal(3, run.ExitCode);
        Assert.Contains("model.decoder.filename names '../victim/model.onnx', which resolves to", run.Error);
        Assert.Contains("outside", run.Error);
        Assert.False(Directory.Exists(Path.Combine(_temp.Path, "a")), "a folder was created for a refused input");
    }

    [Fact]
    public void A_decoder_reached_through_a_link_to_another_folder_is_refused()
    {
        FixtureModels.Save(Llama, Path.Combine(_temp.Path, "victim"));
        string input = Folder("in", "\"sub/model.onnx\"");
        Directory.CreateSymbolicLink(Path.Combine(input, "sub"), Path.Combine(_temp.Path, "victim"));
        var run = Rtn(input, Path.Combine(_temp.Path, "out"));
        Assert.Equal(3, run.ExitCode);
        Assert.Contains("outside", run.Error);
        Assert.False(Directory.Exists(Path.Combine(_temp.Path, "out")));
    }

    [Theory]
    [InlineData("\"/etc/passwd\"", "an absolute path")]
    [InlineData("5", "model.decoder.filename must be a file name (a non-empty string), not number 5")]
    [InlineData("\"\"", "model.decoder.filename must be a file name")]
    public void A_decoder_name_that_is_absolute_or_not_a_string_is_bad_input(string decoderJson, string message)
    {
        string input = Folder("in", decoderJson);
        var run = Rtn(input, Path.Combine(_temp.Path, "out"));
        Assert.Equal(3, run.ExitCode);
        Assert.Contains(message, run.Error);
        Assert.Contains("genai_config.json", run.Error);
        Assert.False(Directory.Exists(Path.Combine(_temp.Path, "out")));
    }

    [Fact]
    public void A_decoder_in_a_subfolder_is_written_under_the_same_name_inside_the_output()
    {
        string input = Folder("in", "\"sub/model.onnx\"");
        FixtureModels.Save(Llama, Path.Combine(input, "sub"));
        var run = Rtn(input, Path.Combine(_temp.Path, "out"));
        Assert.True(run.ExitCode == 0, run.Error);
        Assert.True(File.Exists(Path.Combine(_temp.Path, "out", "sub", "model.onnx")), run.Error);
        Assert.True(File.Exists(Path.Combine(_temp.Path, "out", "genai_config.json")));
        Assert.Equal(["in", "out"], Directory.GetDirectories(_temp.Path).Select(d => Path.GetFileName(d)!).Order().ToArray());
    }
}
