using System.Diagnostics;
using System.Text;
using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.Tests.Cli;
using OnnxQuant.Tests.Fixtures;

namespace OnnxQuant.Tests.Security;

/// <summary>
/// Issue 25: a named pipe, a device or a file that is not text, given where a file is read, is named for what it is
/// (exit 3) instead of hanging, reading without end, or calibrating on noise.
/// </summary>
public sealed class SpecialFileTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private static readonly FixtureOptions Tiny =
        new() { Family = FixtureFamily.TorchLlama, Layers = 1, Hidden = 64, Heads = 4, Intermediate = 128, Vocab = 128, Seed = 7 };

    private string Fifo(string name)
    {
        string path = _temp.File(name);
        using var mkfifo = Process.Start("mkfifo", path);
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
        return path;
    }

    [Fact]
    public void Kinds_are_told_apart_where_dotnet_sees_empty_files()
    {
        Assert.Equal(FileKind.Regular, FileKinds.Of(FixtureModels.Save(Tiny, _temp.Path)));
        Assert.Equal(FileKind.Directory, FileKinds.Of(_temp.Path));
        Assert.Equal(FileKind.Fifo, FileKinds.Of(Fifo("pipe")));
        Assert.Equal(FileKind.CharacterDevice, FileKinds.Of("/dev/zero"));
        Assert.Equal(FileKind.Missing, FileKinds.Of(_temp.File("absent")));
    }

    [Theory]
    [InlineData("fifo", "is a named pipe (FIFO), not a data file")]
    [InlineData("/dev/zero", "is a character device, not a data file")]
    public void A_pipe_or_device_as_data_is_named_for_what_it_is(string which, string expected)
    {
        string model = FixtureModels.Save(Tiny, _temp.Path);
        string data = which == "fifo" ? Fifo("data.txt") : which;
        var run = CliHarness.Run("calibrate", model, "--data", data, "--device", "cpu", "-o", _temp.File("out.calib"));
        Assert.Equal(3, run.ExitCode);
        Assert.Contains(expected, CliHarness.Flat(run.Error));
        Assert.False(File.Exists(_temp.File("out.calib")));
    }

    [Fact]
    public void A_pipe_as_model_or_recipe_is_refused_without_waiting_for_a_writer()
    {
        var model = CliHarness.Run("inspect", Fifo("model.onnx"));
        Assert.Equal(3, model.ExitCode);
        Assert.Contains("is a named pipe (FIFO), not an ONNX model file", CliHarness.Flat(model.Error));

        var recipe = CliHarness.Run("run", "/dev/zero", FixtureModels.Save(Tiny, _temp.Path), "-o", _temp.File("out.onnx"));
        Assert.Equal(3, recipe.ExitCode);
        Assert.Contains("is a character device, not a recipe", CliHarness.Flat(recipe.Error));
    }

    public static TheoryData<string, byte[], string> NotText() => new()
    {
        { "nul.txt", [.. "It is a truth"u8, 0, .. "universally"u8], "holds a NUL byte at offset 13: it is a binary file" },
        { "utf16.txt", [0xFF, 0xFE, .. Encoding.Unicode.GetBytes("It is a truth universally acknowledged")], "is UTF-16 text" },
        { "latin1.txt", Encoding.Latin1.GetBytes(string.Concat(Enumerable.Repeat("Émile à côté ", 40))), "is not UTF-8 text: 160 of its 520 bytes are not UTF-8 (the first at offset 0)" },
    };

    [Theory]
    [MemberData(nameof(NotText))]
    public void Data_that_is_not_utf8_text_is_refused_for_calibration_and_verification(string name, byte[] bytes, string expected)
    {
        // The shipped tiny Llama has its tokenizer beside it, so held-out text is read for verification.
        string model = Path.Combine(CliHarness.RepoRoot(), "models", "tiny-llama", "model.onnx");
        string data = _temp.File(name);
        File.WriteAllBytes(data, bytes);

        var calibrate = CliHarness.Run("calibrate", model, "--data", data, "--device", "cpu", "-o", _temp.File("out.calib"));
        Assert.Equal(3, calibrate.ExitCode);
        Assert.Contains(expected, CliHarness.Flat(calibrate.Error));

        var verify = CliHarness.Run("awq", model, "--method", "rtn", "--verify-data", data, "--device", "cpu", "-o", _temp.File("out.onnx"));
        Assert.Equal(3, verify.ExitCode);
        Assert.Contains(expected, CliHarness.Flat(verify.Error));
    }

    [Fact]
    public void A_text_with_a_few_stray_bytes_is_still_read()
    {
        string text = string.Concat(Enumerable.Repeat("It is a truth universally acknowledged. ", 100));
        byte[] bytes = [.. Encoding.UTF8.GetBytes(text), 0xE9, .. "t\u00e9"u8];
        string data = _temp.File("scraped.txt");
        File.WriteAllBytes(data, bytes);

        Assert.StartsWith("It is a truth", OnnxQuant.Calibrate.Data.DataText.Read(data, "--data"));
    }
}
