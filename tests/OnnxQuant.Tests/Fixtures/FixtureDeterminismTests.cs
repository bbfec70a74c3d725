using Google.Protobuf;
using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Fixtures;

/// <summary>Seeded fixtures are reproducible byte for byte, have the exporter's structure, and survive a save.</summary>
public class FixtureDeterminismTests
{
    [Theory]
    [InlineData(FixtureFamily.TorchLlama)]
    [InlineData(FixtureFamily.GenAiLlama)]
    [InlineData(FixtureFamily.Bert)]
    public void Same_seed_gives_identical_bytes_and_another_seed_other_weights(FixtureFamily family)
    {
        var o = new FixtureOptions { Family = family, OutlierChannels = 2, Seed = 3 };
        Assert.Equal(FixtureModels.Build(o).ToByteArray(), FixtureModels.Build(o).ToByteArray());

        using var a = FixtureModels.BuildModel(o);
        using var b = FixtureModels.BuildModel(o with { Seed = 4 });
        Assert.Equal(a.Graph.Initializers.Keys.Order(), b.Graph.Initializers.Keys.Order());
        int floatWeights = 0;
        foreach (var (name, tensor) in a.Graph.Initializers)
        {
            if (tensor.ElementCount < o.Hidden || !ElementType.IsFloat(tensor.DataType)) continue;
            floatWeights++;
            Assert.False(tensor.RawBytes.SequenceEqual(b.Graph.GetInitializer(name)!.RawBytes), $"{name} is the same for seeds 3 and 4");
        }
        Assert.True(floatWeights >= 10 * o.Layers, $"only {floatWeights} weights compared");
    }

    [Fact]
    public void Torch_llama_has_the_torch_export_patterns()
    {
        using var model = FixtureModels.BuildModel(new FixtureOptions { Family = FixtureFamily.TorchLlama, Layers = 3 });
        var ops = model.Graph.Nodes.Where(n => n.Name.StartsWith("/model/layers.1/input_layernorm/", StringComparison.Ordinal)).Select(n => n.OpType);
        Assert.Equal(new[] { "Pow", "ReduceMean", "Add", "Sqrt", "Reciprocal", "Mul", "Mul" }, ops);
        var lmHead = model.Graph.Nodes.Single(n => n.Name == "/lm_head/MatMul");
        Assert.Equal("logits", lmHead.Output[0]);
        Assert.Equal(new long[] { 64, 256 }, model.Graph.GetInitializer(lmHead.Input[1])!.Shape);
        Assert.Equal(3 * 7 + 1, model.Graph.Nodes.Count(n => n.OpType == "MatMul" && model.Graph.GetInitializer(n.Input[1]) is not null));
        Assert.Equal(3, model.Graph.Nodes.Count(n => n.OpType == "Softmax"));

        using var div = FixtureModels.BuildModel(new FixtureOptions { Family = FixtureFamily.TorchLlama, RmsNorm = RmsNormStyle.Div, Fp16 = true });
        var divOps = div.Graph.Nodes.Where(n => n.Name.StartsWith("/model/norm/", StringComparison.Ordinal)).Select(n => n.OpType);
        Assert.Equal(new[] { "Cast", "Pow", "ReduceMean", "Add", "Sqrt", "Div", "Cast", "Mul" }, divOps);
    }

    [Fact]
    public void Genai_and_bert_use_the_fused_norms_and_names_asked_for()
    {
        using var genai = FixtureModels.BuildModel(new FixtureOptions { Family = FixtureFamily.GenAiLlama, Layers = 3, KvCache = true });
        Assert.Single(genai.Graph.Nodes, n => n.OpType == "SimplifiedLayerNormalization" && n.Domain == "");
        Assert.Equal(2 * 3, genai.Graph.Nodes.Count(n => n.OpType == "SkipSimplifiedLayerNormalization" && n.Domain == "com.microsoft"));
        Assert.Contains(genai.Graph.Nodes, n => n.Name == "/model/layers.2/attn/q_proj/MatMul");
        Assert.Contains(genai.Graph.Nodes, n => n.Name == "/model/layers.2/mlp/down_proj/MatMul");
        Assert.Equal(new[] { "input_ids", "attention_mask", "position_ids" }, genai.Graph.Inputs.Take(3).Select(i => i.Name));
        Assert.Equal(3 + 2 * 3, genai.Graph.Inputs.Count);
        Assert.Equal(1 + 2 * 3, genai.Graph.Outputs.Count);

        using var skip = FixtureModels.BuildModel(new FixtureOptions { Family = FixtureFamily.Bert, BertNorm = BertNormStyle.SkipLayerNormalization });
        Assert.Equal(2 * 2, skip.Graph.Nodes.Count(n => n.OpType == "SkipLayerNormalization" && n.Input.Count == 5));
        var gemm = skip.Graph.Nodes.Single(n => n.OpType == "Gemm");
        Assert.Equal(1, gemm.Attribute.Single(a => a.Name == "transB").I);

        using var decomposed = FixtureModels.BuildModel(new FixtureOptions { Family = FixtureFamily.Bert, BertNorm = BertNormStyle.Decomposed });
        Assert.DoesNotContain(decomposed.Graph.Nodes, n => n.OpType.Contains("LayerNormalization", StringComparison.Ordinal));
        Assert.Equal(1 + 2 * 2, decomposed.Graph.Nodes.Count(n => n.OpType == "Sqrt"));
        Assert.Equal(2 * 2, decomposed.Graph.Nodes.Count(n => n.OpType == "Erf") * 2);
    }

    [Fact]
    public void Saved_fixture_loads_back_identically_and_runs_from_disk()
    {
        var o = new FixtureOptions { Family = FixtureFamily.GenAiLlama, KvCache = true, OutlierChannels = 3, Fp16 = true };
        string folder = Path.Combine(Path.GetTempPath(), $"fixture-save-{Guid.NewGuid():N}");
        try
        {
            string path = FixtureModels.Save(o, folder);
            Assert.True(File.Exists(path + ".data"), "weights of 1 KiB or more go to external data");
            using var loaded = ModelFile.Load(path);
            using var built = FixtureModels.BuildModel(o);
            Assert.Equal(built.Graph.Initializers.Count, loaded.Graph.Initializers.Count);
            foreach (var (name, tensor) in built.Graph.Initializers)
                Assert.True(tensor.RawBytes.SequenceEqual(loaded.Graph.GetInitializer(name)!.RawBytes), name);
            var fromDisk = OrtRunner.RunOnce(path, FixtureFeeds.For(o, 1, 3, past: 2));
            var inMemory = FixtureFeeds.Run(FixtureModels.Build(o), FixtureFeeds.For(o, 1, 3, past: 2));
            Assert.Equal(inMemory["logits"].Values, fromDisk["logits"].Values);
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, true);
        }
    }
}
