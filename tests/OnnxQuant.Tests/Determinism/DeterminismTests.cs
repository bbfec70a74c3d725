using System.Security.Cryptography;
using OnnxQuant.Fixtures;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.Determinism;

/// <summary>
/// The same input, statistics and options give byte-identical outputs, so build pipelines can cache and diff them:
/// each command runs twice (default thread count, so parallel reductions get a chance to reorder) into two folders
/// under the same file name, and the files are compared byte for byte.
/// </summary>
public sealed class DeterminismTests : IClassFixture<DeterminismTests.Inputs>
{
    public sealed class Inputs : IDisposable
    {
        private readonly TempFolder _folder = new();

        public Inputs()
        {
            var options = new FixtureOptions { Family = FixtureFamily.TorchLlama, Layers = 2, Hidden = 64, Intermediate = 128, Vocab = 256, OutlierChannels = 2, Seed = 4 };
            Model = FixtureModels.Save(options, _folder.File("model"));
            Ids = _folder.File("data.ids");
            var rng = new Random(8);
            File.WriteAllText(Ids, string.Join(" ", Enumerable.Range(0, 400).Select(_ => rng.Next(options.Vocab))));
            Stats = _folder.File("model.calib");
            var r = CliHarness.Run(["calibrate", Model, "--data", Ids, .. Calibration, "-o", Stats]);
            if (r.ExitCode != 0)
                throw new InvalidOperationException(r.Error);
        }

        public string Model { get; }

        public string Ids { get; }

        public string Stats { get; }

        public TempFolder Folder => _folder;

        public void Dispose() => _folder.Dispose();
    }

    private static readonly string[] Calibration = ["--samples", "6", "--seq-len", "32", "--device", "cpu"];

    private readonly Inputs _inputs;

    public DeterminismTests(Inputs inputs) => _inputs = inputs;

    [Fact]
    public void Calibrate_writes_the_same_statistics_file_twice()
    {
        var files = RunTwice("stats.calib", output => ["calibrate", _inputs.Model, "--data", _inputs.Ids, .. Calibration, "-o", output]);
        Assert.True(files[0].Length > 10_000, $"{files[0].Length} bytes"); // per-channel statistics and sample rows
    }

    [Fact]
    public void Smooth_from_the_same_statistics_writes_the_same_model_twice() =>
        RunTwice("sq.onnx", output => ["smooth", _inputs.Model, "--stats", _inputs.Stats, "--no-verify", "-o", output]);

    [Fact]
    public void Smooth_calibrating_itself_writes_the_same_model_twice() =>
        RunTwice("sq.onnx", output => ["smooth", _inputs.Model, "--data", _inputs.Ids, .. Calibration, "--format", "qlinear", "--no-verify", "-o", output]);

    [Fact]
    public void Smooth_dynamic_without_calibration_writes_the_same_model_twice() =>
        RunTwice("sq.onnx", output => ["smooth", _inputs.Model, "--alpha", "none", "--format", "dynamic", "--no-verify", "-o", output]);

    [Fact]
    public void Awq_from_the_same_statistics_writes_the_same_model_twice() =>
        RunTwice("q.onnx", output => ["awq", _inputs.Model, "--stats", _inputs.Stats, "--grid", "8", "--no-verify", "-o", output]);

    [Fact]
    public void Awq_calibrating_itself_writes_the_same_model_twice() =>
        RunTwice("q.onnx", output => ["awq", _inputs.Model, "--data", _inputs.Ids, .. Calibration, "--grid", "8", "--no-verify", "-o", output]);

    [Fact]
    public void Awq_rtn_writes_the_same_model_twice() =>
        RunTwice("q.onnx", output => ["awq", _inputs.Model, "--method", "rtn", "--no-verify", "-o", output]);

    // Runs the command into out-1/NAME and out-2/NAME; every file written must be identical (and there must be some).
    private List<byte[]> RunTwice(string name, Func<string, string[]> command)
    {
        var folders = new[] { "out-1", "out-2" }.Select(f => _inputs.Folder.File(Guid.NewGuid().ToString("N") + f)).ToArray();
        foreach (var folder in folders)
        {
            Directory.CreateDirectory(folder);
            var r = CliHarness.Run(command(Path.Combine(folder, name)));
            Assert.True(r.ExitCode == 0, r.Error);
        }
        var first = Directory.GetFiles(folders[0]).Select(Path.GetFileName).Order().ToArray();
        var second = Directory.GetFiles(folders[1]).Select(Path.GetFileName).Order().ToArray();
        Assert.Contains(name, first);
        Assert.Equal(first, second);
        var contents = new List<byte[]>();
        foreach (var file in first)
        {
            byte[] a = File.ReadAllBytes(Path.Combine(folders[0], file!)), b = File.ReadAllBytes(Path.Combine(folders[1], file!));
            Assert.True(a.AsSpan().SequenceEqual(b),
                $"{file} differs between runs: {a.Length} vs {b.Length} bytes, SHA-256 {Convert.ToHexString(SHA256.HashData(a))[..16]} vs {Convert.ToHexString(SHA256.HashData(b))[..16]}");
            contents.Add(a);
        }
        return contents;
    }
}
