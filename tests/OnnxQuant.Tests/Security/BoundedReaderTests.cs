using OnnxQuant.IO;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.Security;

/// <summary>Issue 25: recipes and GenAI configs are read within a bound, and a key given twice is refused, not "last wins".</summary>
public sealed class BoundedReaderTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private static string TinyLlama => Path.Combine(CliHarness.RepoRoot(), "models", "tiny-llama", "model.onnx");

    [Fact]
    public void A_recipe_over_its_bound_or_endless_is_bad_input_and_nothing_is_written()
    {
        string big = _temp.File("big.json");
        File.WriteAllText(big, "{ \"recipe\": 1, \"passes\": [" + string.Join(",", Enumerable.Repeat("{ \"pass\": \"fold-weights\" }", 50_000)) + "] }");
        Assert.True(new FileInfo(big).Length > BoundedText.RecipeBytes);
        var run = CliHarness.Run("run", big, TinyLlama, "-o", _temp.File("out.onnx"));
        Assert.Equal(3, run.ExitCode);
        Assert.Contains($"{big}: is over the 1,048,576-byte bound of a recipe", CliHarness.Flat(run.Error));
        // A device that never ends is named for what it is before a byte is read (SpecialFileTests).
        var endless = CliHarness.Run("run", "/dev/zero", TinyLlama, "-o", _temp.File("out.onnx"));
        Assert.Equal(3, endless.ExitCode);
        Assert.Contains("/dev/zero: is a character device, not a recipe", CliHarness.Flat(endless.Error));
        Assert.False(File.Exists(_temp.File("out.onnx")));
    }

    [Fact]
    public void A_recipe_with_a_byte_order_mark_reads_as_without_one()
    {
        string recipe = _temp.File("bom.json");
        File.WriteAllText(recipe, "{ \"recipe\": 1, \"passes\": [ { \"pass\": \"fold-weights\" }, { \"pass\": \"w4-rewrite\" } ], \"verification\": { \"enabled\": false } }",
            new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: true));
        Assert.Equal(0xEF, File.ReadAllBytes(recipe)[0]);
        var run = CliHarness.Run("run", recipe, TinyLlama, "-o", _temp.File("out.onnx"));
        Assert.True(run.ExitCode == 0, run.Error);
        Assert.True(File.Exists(_temp.File("out.onnx")));
    }

    [Fact]
    public void A_recipe_key_given_twice_is_a_usage_error_naming_it()
    {
        string recipe = _temp.File("dup.json");
        File.WriteAllText(recipe, "{ \"recipe\": 1, \"passes\": [ { \"pass\": \"fold-weights\" } ], \"passes\": [] }");
        var run = CliHarness.Run("run", recipe, TinyLlama, "-o", _temp.File("out.onnx"));
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("Duplicate property 'passes'", CliHarness.Flat(run.Error));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_genai_config_too_large_or_with_a_key_twice_is_bad_input(bool tooLarge)
    {
        string folder = Path.Combine(_temp.Path, "in");
        Directory.CreateDirectory(folder);
        File.Copy(TinyLlama, Path.Combine(folder, "model.onnx"));
        string config = tooLarge
            ? "{ \"model\": { \"decoder\": { \"filename\": \"model.onnx\" } }, \"pad\": \"" + new string('x', 1_100_000) + "\" }"
            : "{ \"model\": { \"decoder\": { \"filename\": \"model.onnx\", \"filename\": \"../x.onnx\" } } }";
        File.WriteAllText(Path.Combine(folder, "genai_config.json"), config);
        var run = CliHarness.Run("awq", folder, "--method", "rtn", "--no-verify", "-o", Path.Combine(_temp.Path, "out"));
        Assert.Equal(3, run.ExitCode);
        Assert.Contains(tooLarge ? "over the 1,048,576-byte bound of a GenAI config" : "Duplicate property 'filename'", CliHarness.Flat(run.Error));
        Assert.False(Directory.Exists(Path.Combine(_temp.Path, "out")));
    }
}
