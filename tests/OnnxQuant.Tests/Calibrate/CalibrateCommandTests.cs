using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.Fixtures;
using OnnxQuant.Statistics;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.Calibrate;

public sealed class CalibrateCommandTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("oq-calib-cli-").FullName;

    public void Dispose() => Directory.Delete(_folder, true);

    private static readonly FixtureOptions Model = new() { Family = FixtureFamily.TorchLlama, OutlierChannels = 3, Seed = 2 };

    private string Ids(int count)
    {
        string path = Path.Combine(_folder, "data.ids");
        var rng = new Random(3);
        File.WriteAllText(path, string.Join(" ", Enumerable.Range(0, count).Select(_ => rng.Next(Model.Vocab))));
        return path;
    }

    [Fact]
    public void Calibrate_writes_statistics_and_a_report_and_its_json_names_the_outlier_channels()
    {
        string model = FixtureModels.Save(Model, Path.Combine(_folder, "m"));
        string stats = Path.Combine(_folder, "m.calib"), report = Path.Combine(_folder, "r.html");
        var r = CliHarness.Run("calibrate", model, "--data", Ids(64), "--samples", "3", "--seq-len", "16", "--device", "cpu",
            "-o", stats, "--report", report, "--top", "3", "--json");
        Assert.True(r.ExitCode == 0, r.Error);
        var json = r.Json();
        Assert.Equal(3, json.GetProperty("samples").GetInt32());
        Assert.Equal("cpu", json.GetProperty("device").GetString());
        var expected = FixtureModels.Describe(Model).OutlierChannels.Order().ToArray();
        var tensors = json.GetProperty("tensors").EnumerateArray().ToList();
        Assert.Equal(3, tensors.Count);
        foreach (var t in tensors)
        {
            var channels = t.GetProperty("top_channels").EnumerateArray().Select(c => c.GetProperty("channel").GetInt32()).Order();
            Assert.Equal(expected, channels);
            Assert.True(t.GetProperty("max_over_median").GetSingle() > 5);
        }
        var written = StatsFile.Read(stats);
        Assert.Equal(json.GetProperty("tensor_count").GetInt32(), written.Tensors.Count);
        Assert.Equal(48, written.Tensors.First().TokenCount);
        Assert.Contains("<svg", File.ReadAllText(report));

        // The report can be drawn again from the file alone, and the text summary names the same channels.
        var again = CliHarness.Run("calibrate", model, "--stats", stats, "--report", Path.Combine(_folder, "again.svg"));
        Assert.True(again.ExitCode == 0, again.Error);
        Assert.Contains($"{expected[0]}: ", again.Out);
        Assert.True(File.Exists(Path.Combine(_folder, "again.svg")));
    }

    [Fact]
    public void Stats_of_another_model_are_refused_with_bad_input()
    {
        string model = FixtureModels.Save(Model, Path.Combine(_folder, "a"));
        string other = FixtureModels.Save(Model with { Seed = 9 }, Path.Combine(_folder, "b"));
        string stats = Path.Combine(_folder, "a.calib");
        Assert.Equal(0, CliHarness.Run("calibrate", model, "--data", Ids(40), "--samples", "2", "--seq-len", "8", "--device", "cpu", "-o", stats).ExitCode);
        var r = CliHarness.Run("calibrate", other, "--stats", stats);
        Assert.Equal((int)ExitCode.BadInput, r.ExitCode);
        Assert.Contains("recorded on another model", r.Error);
        Assert.Equal("", r.Out);
    }

    [Fact]
    public void Too_little_data_fails_cleanly_and_writes_nothing()
    {
        string model = FixtureModels.Save(Model, Path.Combine(_folder, "m"));
        string stats = Path.Combine(_folder, "m.calib");
        var r = CliHarness.Run("calibrate", model, "--data", Ids(20), "--samples", "4", "--seq-len", "8", "--device", "cpu", "-o", stats);
        Assert.Equal((int)ExitCode.BadInput, r.ExitCode);
        Assert.Contains("too little text", r.Error);
        Assert.False(File.Exists(stats));
    }

    [Fact]
    public void Auto_device_falls_back_to_the_cpu_with_a_notice_when_cuda_cannot_start()
    {
        var proto = FixtureModels.Build(new FixtureOptions());
        using var opened = SessionFactory.Open(Google.Protobuf.MessageExtensions.ToByteArray(proto), new SessionSettings { Device = ExecutionDevice.Auto }, null, "fixture");
        if (opened.Device == "cuda")
        {
            Assert.Null(opened.Notice); // a machine with a working GPU
            return;
        }
        Assert.Equal("cpu", opened.Device);
        Assert.Contains("CUDA is not available", opened.Notice);
        Assert.Contains("input_ids", opened.Session.InputNames);
        // Later sessions skip the failed CUDA attempt but still say why they run on the CPU (whichever test came first).
        using var again = SessionFactory.Open(Google.Protobuf.MessageExtensions.ToByteArray(proto), new SessionSettings { Device = ExecutionDevice.Auto }, null, "fixture");
        Assert.Equal("cpu", again.Device);
        Assert.Equal(opened.Notice, again.Notice);
    }
}
