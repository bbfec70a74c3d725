using Onnx;
using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.Tests.Cli;
using OnnxQuant.Tests.Fixtures;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.ModelIO;

/// <summary>load -> save -> load keeps the graph and ORT gives identical outputs (docs/architecture.md, "External data").</summary>
public class RoundTripTests
{
    public static TheoryData<string> Fixtures() => new()
    {
        "torch-llama", "torch-llama-fp16-outliers", "genai-llama-kv", "bert-layernorm", "bert-decomposed", "bert-skip-fp16",
    };

    private static FixtureOptions Options(string name) => name switch
    {
        "torch-llama" => new FixtureOptions { Family = FixtureFamily.TorchLlama },
        "torch-llama-fp16-outliers" => new FixtureOptions { Family = FixtureFamily.TorchLlama, Fp16 = true, OutlierChannels = 3 },
        "genai-llama-kv" => new FixtureOptions { Family = FixtureFamily.GenAiLlama, KvCache = true },
        "bert-layernorm" => new FixtureOptions { Family = FixtureFamily.Bert },
        "bert-decomposed" => new FixtureOptions { Family = FixtureFamily.Bert, BertNorm = BertNormStyle.Decomposed, OutlierChannels = 2 },
        "bert-skip-fp16" => new FixtureOptions { Family = FixtureFamily.Bert, BertNorm = BertNormStyle.SkipLayerNormalization, Fp16 = true },
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Every_fixture_round_trips_with_identical_outputs(string name)
    {
        using var dir = new TempFolder();
        var options = Options(name);
        // Inline first (a self-contained file), then through our loader and saver to external data, then again.
        string original = FixtureModels.Save(options, dir.Path, "original.onnx", new SaveOptions { ExternalThreshold = long.MaxValue });
        string once = dir.File("once.onnx"), twice = dir.File("twice.onnx");
        using (var m = ModelFile.Load(original)) ModelFile.Save(m, once);
        using (var m = ModelFile.Load(once)) ModelFile.Save(m, twice);

        AssertSameGraph(original, twice);
        var feeds = FixtureFeeds.For(options, batch: 2, seq: 5, past: options.KvCache ? 2 : 0);
        AssertIdenticalOutputs(OrtRunner.RunOnce(original, feeds), OrtRunner.RunOnce(twice, feeds));
        Assert.True(File.Exists(twice + ".data"));
    }

    [ArtifactFact(Artifact.MiniLm)]
    public void MiniLM_round_trips_with_identical_outputs()
    {
        string minilm = RequiredArtifact.MiniLmModel;
        using var dir = new TempFolder();
        string copy = dir.File("minilm.onnx");
        using (var m = ModelFile.Load(minilm))
            ModelFile.Save(m, copy);
        AssertSameGraph(minilm, copy);
        // The proto keeps only structure and small tensors; 86 MiB of weights went to the data file.
        Assert.True(new FileInfo(copy).Length < 1 << 20);
        Assert.True(new FileInfo(copy + ".data").Length > 80L << 20);

        long[] ids = { 101, 2023, 2003, 1037, 3231, 6251, 1012, 102 };
        var feeds = new Dictionary<string, OrtFeed>
        {
            ["input_ids"] = OrtFeed.Int64(ids, 1, ids.Length),
            ["attention_mask"] = OrtFeed.Int64(Enumerable.Repeat(1L, ids.Length).ToArray(), 1, ids.Length),
            ["token_type_ids"] = OrtFeed.Int64(new long[ids.Length], 1, ids.Length),
        };
        AssertIdenticalOutputs(OrtRunner.RunOnce(minilm, feeds), OrtRunner.RunOnce(copy, feeds));
    }

    private static void AssertSameGraph(string expectedPath, string actualPath)
    {
        using var expected = ModelFile.Load(expectedPath);
        using var actual = ModelFile.Load(actualPath);
        Assert.Equal(expected.Graph.Nodes.Select(n => n.ToString()), actual.Graph.Nodes.Select(n => n.ToString()));
        Assert.Equal(expected.Graph.Inputs.Select(v => v.ToString()), actual.Graph.Inputs.Select(v => v.ToString()));
        Assert.Equal(expected.Graph.Outputs.Select(v => v.ToString()), actual.Graph.Outputs.Select(v => v.ToString()));
        Assert.Equal(expected.Header.OpsetImport, actual.Header.OpsetImport);
        Assert.Equal(expected.Graph.Initializers.Keys, actual.Graph.Initializers.Keys);
        foreach (var (name, tensor) in expected.Graph.Initializers)
        {
            var other = actual.Graph.Initializers[name];
            Assert.Equal(tensor.DataType, other.DataType);
            Assert.Equal(tensor.Shape, other.Shape);
            Assert.True(tensor.RawBytes.SequenceEqual(other.RawBytes), $"initializer '{name}' changed");
        }
    }

    private static void AssertIdenticalOutputs(Dictionary<string, OrtResult> expected, Dictionary<string, OrtResult> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, e) in expected)
        {
            Assert.Equal(e.Shape, actual[name].Shape);
            Assert.Equal(e.Values, actual[name].Values); // bit-identical: same weights, same graph, same session options
        }
    }
}
