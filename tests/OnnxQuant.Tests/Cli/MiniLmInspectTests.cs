using System.Text.Json;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Cli;

/// <summary>`onnxquant inspect` on the real MiniLM (models/minilm, fetched by models/fetch-minilm.sh).</summary>
public class MiniLmInspectTests
{
    [ArtifactFact(Artifact.MiniLm)]
    public void InspectFindsEveryLinearAndTheLayerNormFeedingQkv()
    {
        var result = CliHarness.Run("inspect", RequiredArtifact.MiniLmModel, "--json");

        Assert.Equal((0, ""), (result.ExitCode, result.Error));
        var json = result.Json();
        Assert.Equal(36, json.GetProperty("quantizable_mat_muls").GetInt32());
        Assert.Equal(1, json.GetProperty("quantizable_gemms").GetInt32());
        // Every MatMul/Gemm has a verdict: the 37 linears and the 12 attention products (q·kᵀ, scores·v) of 6 layers.
        var all = json.GetProperty("linears").EnumerateArray().ToList();
        Assert.Equal(49, all.Count);
        Assert.Equal(12, all.Count(l => l.GetProperty("reason").GetString() == "ComputedWeight"));
        var linears = all.Where(l => l.GetProperty("reason").GetString() == "None").ToList();
        Assert.Equal(37, linears.Count);

        // q/k/v: the three 384x384 linears that read one activation. Six layers, each fed by a LayerNorm.
        var qkv = linears.GroupBy(l => l.GetProperty("activation").GetString()).Where(g => g.Count() == 3).ToList();
        Assert.Equal(6, qkv.Count);
        foreach (var group in qkv)
            foreach (var linear in group)
            {
                Assert.Equal((384, 384), (linear.GetProperty("k").GetInt32(), linear.GetProperty("n").GetInt32()));
                Assert.Contains(linear.GetProperty("producer_kind").GetString(), new[] { "LayerNorm", "DecomposedLayerNorm" });
                Assert.EndsWith("LayerNorm.weight", linear.GetProperty("gamma").GetString());
                Assert.EndsWith("LayerNorm.bias", linear.GetProperty("beta").GetString());
            }
        // Layer i's q/k/v read the LayerNorm that ends layer i-1 (the embeddings' for layer 0).
        Assert.Equal(
            ["embeddings.LayerNorm.weight", .. Enumerable.Range(0, 5).Select(i => $"encoder.layer.{i}.output.LayerNorm.weight")],
            qkv.Select(g => g.First().GetProperty("gamma").GetString()));

        // The MLP up-projections (384 -> 1536) also read a LayerNorm; their down-projections read GELU (Other).
        var up = linears.Where(l => l.GetProperty("n").GetInt32() == 1536).ToList();
        Assert.Equal(6, up.Count);
        Assert.All(up, l => Assert.Equal("DecomposedLayerNorm", l.GetProperty("producer_kind").GetString()));
        Assert.All(linears, l => Assert.True(l.GetProperty("bias").GetBoolean()));
    }
}
