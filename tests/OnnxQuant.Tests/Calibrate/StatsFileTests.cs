using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.Statistics;
using static OnnxQuant.Tests.Calibrate.CalibrationTestSupport;

namespace OnnxQuant.Tests.Calibrate;

public sealed class StatsFileTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("oq-stats-").FullName;

    public void Dispose() => Directory.Delete(_folder, true);

    private static readonly FixtureOptions Model = new() { Family = FixtureFamily.TorchLlama, OutlierChannels = 2 };

    private static CalibrationStats Stats() => CalibrateFixture(FixtureModels.Build(Model), RandomIds(2, 8, Model.Vocab)).Stats;

    [Fact]
    public void A_written_file_reads_back_to_the_same_statistics_and_bytes()
    {
        var stats = Stats();
        string path = Path.Combine(_folder, "m.calib");
        StatsFile.Write(stats, path);
        var read = StatsFile.Read(path);
        Assert.Equal(stats.ModelFingerprint, read.ModelFingerprint);
        Assert.Equal(stats.Info, read.Info);
        Assert.Equal(stats.Tensors.Select(t => t.Name), read.Tensors.Select(t => t.Name));
        foreach (var t in stats.Tensors)
        {
            var r = read.Get(t.Name)!;
            Assert.Equal(t.AbsMax, r.AbsMax);
            Assert.Equal(t.MeanAbs, r.MeanAbs);
            Assert.Equal(t.SampleRows, r.SampleRows);
            Assert.Equal((t.Min, t.Max, t.TokenCount, t.SampleRowCount), (r.Min, r.Max, r.TokenCount, r.SampleRowCount));
        }
        Assert.Equal(File.ReadAllBytes(path), StatsFile.ToBytes(read));
    }

    [Fact]
    public void Statistics_of_another_model_are_refused()
    {
        var stats = Stats();
        using var same = OnnxModel.FromProto(FixtureModels.Build(Model));
        stats.EnsureMatches(same.Graph, "m.calib"); // does not throw
        foreach (var other in new[] { Model with { Seed = 1 }, Model with { Layers = 3 }, Model with { OutlierChannels = 1 } })
        {
            using var model = OnnxModel.FromProto(FixtureModels.Build(other));
            var e = Assert.Throws<OnnxQuantException>(() => stats.EnsureMatches(model.Graph, "m.calib"));
            Assert.Contains("recorded on another model", e.Message);
            Assert.Equal("m.calib", e.File);
        }
    }

    [Fact]
    public void The_fingerprint_sees_a_changed_weight_value_but_not_a_reload()
    {
        using var a = OnnxModel.FromProto(FixtureModels.Build(Model));
        using var b = OnnxModel.FromProto(FixtureModels.Build(Model));
        Assert.Equal(ModelFingerprint.Compute(a.Graph), ModelFingerprint.Compute(b.Graph));
        var gamma = b.Graph.Initializers.Values.First(t => t.Name.Contains("layernorm", StringComparison.OrdinalIgnoreCase) && t.Shape.Count == 1);
        var values = gamma.ToFloats();
        values[0] *= 2; // what smoothing a norm's gamma does
        b.Graph.SetInitializer(IR.Tensor.FromFloats(gamma.Name, values, gamma.Shape, gamma.DataType));
        Assert.NotEqual(ModelFingerprint.Compute(a.Graph), ModelFingerprint.Compute(b.Graph));
    }

    [Fact]
    public void A_damaged_or_foreign_file_is_a_clear_error()
    {
        var bytes = StatsFile.ToBytes(Stats());
        string path = Path.Combine(_folder, "bad.calib");
        var flipped = (byte[])bytes.Clone();
        flipped[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(path, flipped);
        Assert.Contains("damaged", Assert.Throws<OnnxQuantException>(() => StatsFile.Read(path)).Message);
        File.WriteAllBytes(path, bytes[..(bytes.Length - 100)]);
        Assert.Contains("damaged", Assert.Throws<OnnxQuantException>(() => StatsFile.Read(path)).Message);
        File.WriteAllText(path, "not a statistics file at all, just text that is long enough");
        Assert.Contains("not an OnnxQuant statistics file", Assert.Throws<OnnxQuantException>(() => StatsFile.Read(path)).Message);
        var future = (byte[])bytes.Clone();
        future[8] = 99;
        File.WriteAllBytes(path, future);
        Assert.Contains("format version 99", Assert.Throws<OnnxQuantException>(() => StatsFile.Read(path)).Message);
        Assert.Contains("does not exist", Assert.Throws<OnnxQuantException>(() => StatsFile.Read(Path.Combine(_folder, "none.calib"))).Message);
    }
}
