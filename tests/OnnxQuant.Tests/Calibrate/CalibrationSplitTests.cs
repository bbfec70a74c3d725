using OnnxQuant.Calibrate;
using OnnxQuant.Fixtures;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.Calibrate;

/// <summary>
/// Issue 31, item 6: block sessions doubled the peak memory of small models, so by default calibration runs the whole
/// graph when its weights are a small fraction of the available memory, and block by block when they are not.
/// </summary>
public sealed class CalibrationSplitTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("oq-split-").FullName;

    public void Dispose() => Directory.Delete(_folder, true);

    private static readonly FixtureOptions Model = new() { Family = FixtureFamily.TorchLlama, Layers = 2, Seed = 2 };

    [Fact]
    public void The_split_follows_the_weights_share_of_the_available_memory()
    {
        using var model = FixtureModels.BuildModel(Model);
        long weights = CalibrationSplit.SessionBytes(model);
        Assert.Equal(model.Graph.Initializers.Values.Sum(t => t.ByteLength), weights); // fp32: each counted once

        Assert.Equal(CalibrationSessions.WholeGraph, CalibrationSplit.Choose(model, 8 * weights));
        Assert.Equal(CalibrationSessions.Layers, CalibrationSplit.Choose(model, 8 * weights - 1));
        Assert.Equal(CalibrationSessions.Layers, CalibrationSplit.Choose(model, null));
    }

    [Fact]
    public void Calibrate_runs_a_small_model_in_one_session_unless_block_sessions_are_asked_for()
    {
        string model = FixtureModels.Save(Model, Path.Combine(_folder, "m"));
        string ids = Path.Combine(_folder, "data.ids");
        File.WriteAllText(ids, string.Join(" ", Enumerable.Range(0, 64).Select(i => i * 7 % Model.Vocab)));
        int Sessions(params string[] extra)
        {
            var r = CliHarness.Run(["calibrate", model, "--data", ids, "--samples", "2", "--seq-len", "16", "--device", "cpu",
                "-o", Path.Combine(_folder, $"{extra.Length}.calib"), "--json", .. extra]);
            Assert.True(r.ExitCode == 0, r.Error);
            return r.Json().GetProperty("sessions").GetInt32();
        }

        Assert.Equal(1, Sessions());
        Assert.Equal(2 * Model.Layers + 1, Sessions("--block-sessions"));
        Assert.Equal(1, Sessions("--whole-graph"));
    }
}
