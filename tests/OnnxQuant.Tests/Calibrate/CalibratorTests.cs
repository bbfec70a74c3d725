using Google.Protobuf;
using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate;
using OnnxQuant.Calibrate.Recording;
using OnnxQuant.Calibrate.Report;
using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.Statistics;
using static OnnxQuant.Tests.Calibrate.CalibrationTestSupport;

namespace OnnxQuant.Tests.Calibrate;

public class CalibratorTests
{
    public static TheoryData<FixtureFamily, bool> Families => new()
    {
        { FixtureFamily.TorchLlama, false },
        { FixtureFamily.GenAiLlama, true },
        { FixtureFamily.Bert, false },
        { FixtureFamily.TorchLlama, true },
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void Statistics_equal_a_direct_reduction_of_the_same_activations(FixtureFamily family, bool variant)
    {
        // variant: GenAiLlama with a KV cache (zero-length past), TorchLlama in fp16.
        var o = new FixtureOptions { Family = family, OutlierChannels = 2, KvCache = family == FixtureFamily.GenAiLlama && variant, Fp16 = family == FixtureFamily.TorchLlama && variant };
        var proto = FixtureModels.Build(o);
        var data = RandomIds(samples: 3, seq: 12, vocab: o.Vocab);
        var result = CalibrateFixture(proto, data, new CalibrationOptions { BatchSize = 2, SampleRowsPerTensor = 10 });

        using var model = OnnxModel.FromProto(proto);
        var expectedTensors = LinearNode.FindAll(model.Graph).Select(l => l.Activation).Distinct().ToList();
        Assert.Equal(expectedTensors.Order(StringComparer.Ordinal), result.Stats.Tensors.Select(t => t.Name));
        var reference = Direct(proto, o, data, expectedTensors);
        float tolerance = o.Fp16 ? 2e-3f : 1e-5f;
        foreach (var stats in result.Stats.Tensors)
        {
            var r = reference[stats.Name];
            Assert.Equal(r.Rows.Count, stats.TokenCount);
            Assert.True(RelativeError(stats.AbsMax, r.AbsMax) <= tolerance, $"{stats.Name}: absmax off by {RelativeError(stats.AbsMax, r.AbsMax)}");
            Assert.True(RelativeError(stats.MeanAbs, r.MeanAbs) <= tolerance, $"{stats.Name}: mean |x| off by {RelativeError(stats.MeanAbs, r.MeanAbs)}");
            Assert.Equal(r.Min, stats.Min, tolerance * Math.Max(1, Math.Abs(r.Min)));
            Assert.Equal(r.Max, stats.Max, tolerance * Math.Max(1, Math.Abs(r.Max)));
            // The reservoir holds min(10, tokens) distinct real rows.
            Assert.Equal(Math.Min(10, r.Rows.Count), stats.SampleRowCount);
            var matched = new HashSet<int>();
            for (int i = 0; i < stats.SampleRowCount; i++)
            {
                var row = stats.SampleRow(i).ToArray();
                // Rows can repeat (the first layer's norm output depends on the token id alone): match each to an unused one.
                int at = Enumerable.Range(0, r.Rows.Count).FirstOrDefault(k => !matched.Contains(k) && RelativeError(row, r.Rows[k]) <= tolerance, -1);
                Assert.True(at >= 0, $"{stats.Name}: sample row {i} is not a row of the activation, or repeats one more often than it occurs");
                matched.Add(at);
            }
        }
    }

    [Theory]
    [InlineData(FixtureFamily.TorchLlama)]
    [InlineData(FixtureFamily.GenAiLlama)]
    [InlineData(FixtureFamily.Bert)]
    public void The_summary_names_the_injected_outlier_channels(FixtureFamily family)
    {
        var built = FixtureModels.BuildWithDescription(new FixtureOptions { Family = family, OutlierChannels = 3, Seed = 3 });
        var result = CalibrateFixture(built.Proto, RandomIds(2, 16, built.Description.Options.Vocab));
        Assert.NotEmpty(built.Description.Sites);
        foreach (var site in built.Description.Sites)
        {
            var outliers = OutlierSummary.For(result.Stats.Get(site.Activation)!, topChannels: 3);
            Assert.Equal(built.Description.OutlierChannels.Order(), outliers.Top.Select(c => c.Channel).Order());
            Assert.True(outliers.Top[^1].Ratio > 5, $"{site.Activation}: the weakest injected channel stands only {outliers.Top[^1].Ratio}x above the median");
        }
        // The ranking puts outlier-carrying norm outputs first.
        var ranked = OutlierSummary.Rank(result.Stats);
        Assert.Contains(ranked[0].Tensor, built.Description.Sites.Select(s => s.Activation));
    }

    [Fact]
    public void A_kv_cache_model_gives_the_same_statistics_as_its_cacheless_twin()
    {
        var plain = new FixtureOptions { Family = FixtureFamily.GenAiLlama, OutlierChannels = 2 };
        var data = RandomIds(2, 10, plain.Vocab);
        var withCache = CalibrateFixture(FixtureModels.Build(plain with { KvCache = true }), data);
        var without = CalibrateFixture(FixtureModels.Build(plain), data);
        Assert.Equal(without.Stats.Tensors.Count, withCache.Stats.Tensors.Count);
        foreach (var t in without.Stats.Tensors)
        {
            var c = withCache.Stats.Get(t.Name)!;
            Assert.True(RelativeError(c.AbsMax, t.AbsMax) < 1e-5 && RelativeError(c.MeanAbs, t.MeanAbs) < 1e-5, t.Name);
        }
    }

    [Fact]
    public void The_memory_budget_splits_the_recording_into_runs_with_identical_statistics()
    {
        var o = new FixtureOptions { Family = FixtureFamily.TorchLlama, OutlierChannels = 2 };
        var proto = FixtureModels.Build(o);
        var data = RandomIds(3, 8, o.Vocab);
        // The whole graph's session: block sessions record only their own tensors, so they never need several runs.
        var whole = new CalibrationOptions { Sessions = CalibrationSessions.WholeGraph };
        var one = CalibrateFixture(proto, data, whole);
        // 8 tokens x 64 channels x 4 bytes = 2 KiB per norm output: a 3 KiB budget fits one such tensor per run.
        var split = CalibrateFixture(proto, data, whole with { MaxMemoryBytes = 3 << 10 });
        Assert.Equal(1, one.Runs);
        Assert.True(split.Runs >= one.Stats.Tensors.Count - 1, $"expected about one run per tensor, got {split.Runs} for {one.Stats.Tensors.Count}");
        Assert.Equal(StatsFile.ToBytes(one.Stats), StatsFile.ToBytes(split.Stats));
    }

    [Fact]
    public void The_recording_copy_outputs_only_the_activations_and_drops_what_they_do_not_need()
    {
        using var model = OnnxModel.FromProto(FixtureModels.Build(new FixtureOptions { Family = FixtureFamily.TorchLlama }));
        var tensors = RecordedTensor.FindAll(model.Graph);
        var copy = ModelProto.Parser.ParseFrom(new RecordingModel(model).Serialize(tensors.Select(t => t.Name).ToList()));
        Assert.Equal(tensors.Select(t => t.Name), copy.Graph.Output.Select(o => o.Name));
        Assert.DoesNotContain(copy.Graph.Node, n => n.Output.Contains("logits"));
        Assert.DoesNotContain(copy.Graph.Initializer, t => t.Name.Contains("lm_head"));
        // Only the first layer's norm output: nothing of later layers is computed.
        var first = new RecordingModel(model).Serialize([tensors[0].Name]);
        Assert.True(ModelProto.Parser.ParseFrom(first).Graph.Node.Count < model.Graph.Nodes.Count / 4);
    }

    [Fact]
    public void A_model_with_external_data_is_recorded_in_place_with_the_same_statistics()
    {
        var o = new FixtureOptions { Family = FixtureFamily.TorchLlama, OutlierChannels = 2 };
        string folder = Directory.CreateTempSubdirectory("oq-calib-ext-").FullName;
        try
        {
            string path = FixtureModels.Save(o, folder);
            Assert.True(File.Exists(path + ".data"));
            var data = RandomIds(2, 8, o.Vocab);
            using var loaded = ModelFile.Load(path);
            var recording = new RecordingModel(loaded);
            Assert.Equal(Path.GetFullPath(folder), recording.ExternalDataFolder);
            // The copy references the weights; it is a few KiB, not the model's size.
            var bytes = recording.Serialize(RecordedTensor.FindAll(loaded.Graph).Select(t => t.Name).ToList());
            Assert.True(bytes.Length < new FileInfo(path + ".data").Length / 10, $"recording copy is {bytes.Length} bytes");
            var fromFile = Calibrator.Run(loaded, data, new CalibrationOptions(), Cpu);
            var inMemory = CalibrateFixture(FixtureModels.Build(o), data);
            Assert.Equal(StatsFile.ToBytes(inMemory.Stats), StatsFile.ToBytes(fromFile.Stats));
            Assert.Equal(1, Directory.GetFiles(folder).Count(f => f.EndsWith(".data")));
        }
        finally
        {
            Directory.Delete(folder, true);
        }
    }

    [Fact]
    public void An_input_calibration_cannot_fill_is_an_error_listing_the_inputs()
    {
        var proto = FixtureModels.Build(new FixtureOptions { Family = FixtureFamily.TorchLlama });
        var extra = new ValueInfoProto { Name = "pixel_values", Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } } };
        extra.Type.TensorType.Shape = new TensorShapeProto();
        extra.Type.TensorType.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = 3 });
        proto.Graph.Input.Add(extra);
        // The whole graph's session declares every input; a block session declares only those its nodes read, so an
        // input nothing reads is never fed there.
        var e = Assert.Throws<OnnxQuantException>(() => CalibrateFixture(proto, RandomIds(1, 4, 256), new CalibrationOptions { Sessions = CalibrationSessions.WholeGraph }));
        Assert.Contains("'pixel_values'", e.Message);
        Assert.Contains("input_ids", e.Message);
        Assert.Contains("attention_mask", e.Message);
        Assert.Equal(ExitCode.Unsupported, e.ExitCode);
    }

    [Fact]
    public void A_boolean_cache_branch_flag_is_fed_false_and_does_not_change_the_statistics()
    {
        var o = new FixtureOptions { Family = FixtureFamily.GenAiLlama, KvCache = true };
        var proto = FixtureModels.Build(o);
        var data = RandomIds(1, 6, o.Vocab);
        var plain = CalibrateFixture(proto, data);
        // Merged decoders (optimum) carry a use_cache_branch flag; the fixture gets one that only feeds a dead branch.
        var flag = new ValueInfoProto { Name = "use_cache_branch", Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Bool, Shape = new TensorShapeProto() } } };
        flag.Type.TensorType.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = 1 });
        proto.Graph.Input.Add(flag);
        var withFlag = CalibrateFixture(proto, data);
        Assert.Equal(plain.Stats.Tensors.Count, withFlag.Stats.Tensors.Count);
        foreach (var t in plain.Stats.Tensors)
            Assert.Equal(t.AbsMax, withFlag.Stats.Get(t.Name)!.AbsMax);
    }

    [Fact]
    public void The_same_inputs_give_the_same_bytes()
    {
        var proto = FixtureModels.Build(new FixtureOptions { Family = FixtureFamily.Bert, OutlierChannels = 1 });
        var data = RandomIds(2, 8, 256);
        var a = StatsFile.ToBytes(CalibrateFixture(proto, data).Stats);
        var b = StatsFile.ToBytes(CalibrateFixture(proto, data, new CalibrationOptions { BatchSize = 2 }).Stats);
        Assert.Equal(a, b);
        var other = StatsFile.ToBytes(CalibrateFixture(proto, data, new CalibrationOptions { Seed = 5 }).Stats);
        Assert.NotEqual(a, other);
    }
}
