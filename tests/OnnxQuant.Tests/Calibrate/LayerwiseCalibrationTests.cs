using OnnxQuant.Analysis;
using OnnxQuant.Calibrate;
using OnnxQuant.Calibrate.Recording;
using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.Statistics;
using OnnxQuant.Tests.Cli;
using OnnxQuant.Tests.Support;
using static OnnxQuant.Tests.Calibrate.CalibrationTestSupport;

namespace OnnxQuant.Tests.Calibrate;

/// <summary>
/// Block-by-block calibration records the same statistics as one whole-graph session: every tensor's per-channel max,
/// mean |x|, range, row count and reservoir rows agree to float tolerance, on the repo's models and the fixture families.
/// </summary>
public class LayerwiseCalibrationTests
{
    public static TheoryData<string, int> RepoModels => new()
    {
        // model, layers (each splits after attention and after the MLP, plus the head: 2 x layers + 1 sessions at most)
        { "tiny-llama", 2 },
        { "austen-lm", 0 },
        { "minilm", 0 },
    };

    [Theory]
    [MemberData(nameof(RepoModels))]
    public void Block_sessions_record_the_statistics_of_the_whole_graph(string name, int layers)
    {
        string path = name == "minilm" ? RequiredArtifact.MiniLmModel : Path.Combine(CliHarness.RepoRoot(), "models", name, "model.onnx");
        using var model = ModelFile.Load(path);
        int vocab = SequenceLimits.Find(model.Graph).Vocabulary ?? 1000;
        var data = RandomIds(samples: 5, seq: 16, vocab: Math.Min(vocab, 1000));
        var options = new CalibrationOptions { BatchSize = 2, SampleRowsPerTensor = 24 };

        var layered = Calibrator.Run(model, data, options, Cpu);
        var whole = Calibrator.Run(model, data, options with { Sessions = CalibrationSessions.WholeGraph }, Cpu);

        Assert.Equal(1, whole.Sessions);
        Assert.True(layered.Sessions >= 3, $"{name} ran in {layered.Sessions} session(s); it has blocks to split at");
        if (layers > 0)
            Assert.Equal(2 * layers + 1, layered.Sessions);
        Assert.Null(layered.Notice);
        AssertSameStatistics(whole.Stats, layered.Stats, 1e-4f);
    }

    public static TheoryData<FixtureFamily, bool> Families => new()
    {
        { FixtureFamily.TorchLlama, false },
        { FixtureFamily.TorchLlama, true }, // fp16
        { FixtureFamily.GenAiLlama, true }, // GroupQueryAttention, rotary, a zero-length KV cache as inputs
        { FixtureFamily.Bert, false },
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void Fixture_families_split_and_agree(FixtureFamily family, bool variant)
    {
        var o = new FixtureOptions
        {
            Family = family, OutlierChannels = 2, Layers = 3,
            KvCache = family == FixtureFamily.GenAiLlama && variant, Fp16 = family == FixtureFamily.TorchLlama && variant,
        };
        var proto = FixtureModels.Build(o);
        var data = RandomIds(samples: 3, seq: 12, vocab: o.Vocab);
        var options = new CalibrationOptions { BatchSize = 2, SampleRowsPerTensor = 10 };
        var layered = CalibrateFixture(proto, data, options);
        var whole = CalibrateFixture(proto, data, options with { Sessions = CalibrationSessions.WholeGraph });
        Assert.True(layered.Sessions >= 2 * o.Layers, $"{family}: {layered.Sessions} sessions for {o.Layers} layers");
        // fp16: the split sessions fuse differently, a few fp16 ulps (2^-10 of the row's largest value) apart after three layers.
        AssertSameStatistics(whole.Stats, layered.Stats, o.Fp16 ? 5e-3f : 1e-4f);
    }

    [Fact]
    public void Values_carried_between_blocks_spill_to_disk_beyond_the_budget_and_come_back_the_same()
    {
        var proto = FixtureModels.Build(new FixtureOptions { Family = FixtureFamily.TorchLlama, Layers = 2 });
        var data = RandomIds(samples: 4, seq: 16, vocab: 256);
        // A budget of a few kB: the hidden states (16 tokens x hidden floats per batch) cannot stay in memory.
        var small = new CalibrationOptions { BatchSize = 1, SampleRowsPerTensor = 8, MaxMemoryBytes = 8 << 10 };
        var spilled = CalibrateFixture(proto, data, small);
        var inMemory = CalibrateFixture(proto, data, small with { MaxMemoryBytes = 1 << 30 });
        Assert.True(spilled.CarriedSpillBytes > 0, "nothing was spilled under an 8 kB budget");
        Assert.Equal(0, inMemory.CarriedSpillBytes);
        // Same sessions, same inputs, bytes round-tripped through the file: identical statistics.
        AssertSameStatistics(inMemory.Stats, spilled.Stats, 0f);
    }

    [Fact]
    public void A_graph_without_blocks_runs_whole_with_a_one_line_notice()
    {
        // Only the first block's input is recorded: no block closes before it, so there is nothing to cut at.
        var proto = FixtureModels.Build(new FixtureOptions { Family = FixtureFamily.TorchLlama, Layers = 2 });
        using var model = OnnxModel.FromProto(proto);
        string first = RecordedTensor.FindAll(model.Graph)[0].Name;
        var result = CalibrateFixture(proto, RandomIds(2, 8, 256), new CalibrationOptions { Tensors = [first] });
        Assert.Equal([first], result.Stats.Tensors.Select(t => t.Name));
        Assert.Equal(1, result.Sessions);
        Assert.NotNull(result.Notice);
        Assert.Contains("cannot be split into blocks", result.Notice);
        Assert.Contains("whole-graph session", result.Notice);
        Assert.DoesNotContain('\n', result.Notice);
    }

    [Fact]
    public void Each_segment_holds_only_the_weights_its_own_nodes_read()
    {
        var proto = FixtureModels.Build(new FixtureOptions { Family = FixtureFamily.TorchLlama, Layers = 4 });
        using var model = OnnxModel.FromProto(proto);
        var recorded = RecordedTensor.FindAll(model.Graph).Select(t => t.Name).ToList();
        var split = LayerSplit.Find(model, recorded);
        Assert.True(split.CanSplit, split.Reason);
        var segments = split.Segments!;
        Assert.Equal(9, segments.Count);
        // Every linear's weight is read in exactly one segment, and the segments together record every tensor once.
        var weights = LinearNode.FindAll(model.Graph).Select(l => l.WeightName).ToHashSet();
        var owner = new Dictionary<string, int>();
        foreach (var s in segments)
            foreach (var w in s.Nodes.SelectMany(n => n.Input).Where(weights.Contains).Distinct())
                Assert.True(owner.TryAdd(w, s.Index), $"weight {w} is read by segments {owner.GetValueOrDefault(w)} and {s.Index}");
        // All but the head's: its input is what is recorded, so the head itself never runs.
        Assert.Equal(weights.Count - 1, owner.Count);
        Assert.Equal(recorded.Order(), segments.SelectMany(s => s.Recorded).Order());
        // A block boundary hands over a few values (the hidden state and what every block shares), not the block's insides.
        foreach (var s in segments.Skip(1))
            Assert.True(s.CarriedIn.Count <= 4, $"segment {s.Index} reads {s.CarriedIn.Count} values from earlier ones: {string.Join(", ", s.CarriedIn)}");
    }

    private static void AssertSameStatistics(CalibrationStats expected, CalibrationStats actual, float tolerance)
    {
        Assert.Equal(expected.Tensors.Select(t => t.Name), actual.Tensors.Select(t => t.Name));
        foreach (var e in expected.Tensors)
        {
            var a = actual.Get(e.Name)!;
            Assert.Equal(e.TokenCount, a.TokenCount);
            Assert.Equal(e.SampleRowCount, a.SampleRowCount);
            Assert.True(RelativeError(a.AbsMax, e.AbsMax) <= tolerance, $"{e.Name}: absmax off by {RelativeError(a.AbsMax, e.AbsMax)}");
            Assert.True(RelativeError(a.MeanAbs, e.MeanAbs) <= tolerance, $"{e.Name}: mean |x| off by {RelativeError(a.MeanAbs, e.MeanAbs)}");
            Assert.Equal(e.Min, a.Min, tolerance * Math.Max(1, Math.Abs(e.Min)));
            Assert.Equal(e.Max, a.Max, tolerance * Math.Max(1, Math.Abs(e.Max)));
            // The reservoir picks rows by position in the row stream, which is the same: the same rows, in the same slots.
            for (int i = 0; i < e.SampleRowCount; i++)
                Assert.True(RelativeError(a.SampleRow(i), e.SampleRow(i)) <= tolerance, $"{e.Name}: sample row {i} differs by {RelativeError(a.SampleRow(i), e.SampleRow(i))}");
        }
    }
}
