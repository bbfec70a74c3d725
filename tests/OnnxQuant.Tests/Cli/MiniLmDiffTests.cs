using System.Text.Json;
using OnnxQuant.IO;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Cli;

/// <summary>`onnxquant diff` on MiniLM before/after `smooth` and `awq`: one row per linear, bytes that add up.</summary>
public sealed class MiniLmDiffTests(MiniLmDiffTests.Models models) : IClassFixture<MiniLmDiffTests.Models>
{
    /// <summary>One smooth and one awq run of MiniLM for the whole class (small calibration, no verification).</summary>
    public sealed class Models : IDisposable
    {
        private readonly string _dir = Directory.CreateTempSubdirectory("onnxquant-minilm-diff-").FullName;
        private readonly Lazy<string> _smoothed;
        private readonly Lazy<string> _awq;

        public Models()
        {
            _smoothed = new(() => Quantize("smooth", "sq.onnx", "--uint8-activations"));
            _awq = new(() => Quantize("awq", "awq.onnx", "--grid", "4"));
        }

        public string Smoothed => _smoothed.Value;

        public string Awq => _awq.Value;

        private string Quantize(string verb, string name, params string[] extra)
        {
            string output = Path.Combine(_dir, name);
            var result = CliHarness.Run([verb, RequiredArtifact.MiniLmModel, "-o", output, "--samples", "16", "--seq-len", "128", "--no-verify", "--json", .. extra]);
            Assert.True(result.ExitCode == 0, result.Error);
            return output;
        }

        public void Dispose() => Directory.Delete(_dir, recursive: true);
    }

    [ArtifactTheory(Artifact.MiniLm)]
    [InlineData("smooth")]
    [InlineData("awq")]
    public void EveryConstantWeightLinearHasOneRowAndTheBytesAddUpToTheSizeChange(string verb)
    {
        string after = verb == "smooth" ? models.Smoothed : models.Awq;

        var result = CliHarness.Run("diff", RequiredArtifact.MiniLmModel, after, "--json");

        Assert.Equal((0, ""), (result.ExitCode, result.Error));
        var json = result.Json();
        var rows = json.GetProperty("linears").EnumerateArray().ToList();
        Assert.Equal(37, rows.Count);
        Assert.Equal(37, rows.Select(r => r.GetProperty("name").GetString()).Distinct().Count());
        Assert.Equal(12, json.GetProperty("computed_products").GetArrayLength());
        string scheme = verb == "smooth" ? "W8A8Static" : "W4";
        Assert.All(rows, r => Assert.Equal(scheme, r.GetProperty("scheme").GetString()));
        Assert.All(rows, r => Assert.Equal("float32", r.GetProperty("dtype").GetString()));
        // Before: fp32 weight [K, N] plus the bias [N]; after: int8 weights are a quarter, 4-bit blocks about an eighth.
        foreach (var r in rows)
        {
            long k = r.GetProperty("k").GetInt64(), n = r.GetProperty("n").GetInt64();
            Assert.Equal(4 * (k * n + n), r.GetProperty("bytes_before").GetInt64());
            long afterBytes = r.GetProperty("bytes_after").GetInt64();
            if (verb == "smooth")
                Assert.InRange(afterBytes, k * n + 4 * n, k * n + 4 * n + 4 * (16 * n + 64));
            else
                Assert.InRange(afterBytes, k * n / 2, k * n / 2 + k * n / 8);
        }

        // The rows and the whole-graph buckets account for every initializer byte of both models, exactly.
        long totalBefore = InitializerBytes(RequiredArtifact.MiniLmModel), totalAfter = InitializerBytes(after);
        var graph = json.GetProperty("graph");
        Assert.Equal((totalBefore, totalAfter), (graph.GetProperty("initializer_bytes_before").GetInt64(), graph.GetProperty("initializer_bytes_after").GetInt64()));
        var buckets = graph.GetProperty("buckets").EnumerateArray().ToList();
        Assert.Equal(totalBefore, rows.Sum(r => r.GetProperty("bytes_before").GetInt64()) + buckets.Sum(b => b.GetProperty("bytes_before").GetInt64()));
        Assert.Equal(totalAfter, rows.Sum(r => r.GetProperty("bytes_after").GetInt64()) + buckets.Sum(b => b.GetProperty("bytes_after").GetInt64()));
        long rowsDelta = rows.Sum(r => r.GetProperty("bytes_delta").GetInt64());
        long sharedDelta = buckets.Sum(b => b.GetProperty("bytes_after").GetInt64() - b.GetProperty("bytes_before").GetInt64());
        Assert.Equal(totalAfter - totalBefore, rowsDelta + sharedDelta);
        // What no linear owns is small: quantizer scales, smoothing Mul constants (under 1% of the change).
        Assert.InRange(Math.Abs(sharedDelta), 0, Math.Abs(rowsDelta) / 100);
        Assert.False(json.TryGetProperty("nodes", out var nodes) && nodes.ValueKind != JsonValueKind.Null);
    }

    [ArtifactFact(Artifact.MiniLm)]
    public void SmoothingIsReadBackPerLinearWithItsAlpha()
    {
        var json = CliHarness.Run("diff", RequiredArtifact.MiniLmModel, models.Smoothed, "--json").Json();
        var text = CliHarness.Run("diff", RequiredArtifact.MiniLmModel, models.Smoothed);

        var rows = json.GetProperty("linears").EnumerateArray().ToList();
        var smoothed = rows.Where(r => r.GetProperty("smoothing").ValueKind == JsonValueKind.Object).ToList();
        Assert.True(smoothed.Count >= 30, $"{smoothed.Count} smoothed linears");
        Assert.All(smoothed, r =>
        {
            var s = r.GetProperty("smoothing");
            Assert.Equal("SmoothQuant", s.GetProperty("method").GetString());
            Assert.InRange(s.GetProperty("alpha").GetSingle(), 0.3f, 0.95f);
        });
        var graph = json.GetProperty("graph");
        Assert.Contains("onnxquant.smoothing", graph.GetProperty("metadata_changed").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(0, text.ExitCode);
        Assert.Contains("37 linears with a constant weight (37 rewritten, 0 float)", text.Out);
        Assert.Contains("not listed: 12 products of two activations", text.Out);
        Assert.DoesNotContain("nodes 650", text.Out);
        Assert.Contains("nodes 650 ->", CliHarness.Run("diff", RequiredArtifact.MiniLmModel, models.Smoothed, "--nodes").Out);
    }

    [ArtifactFact(Artifact.MiniLm)]
    public void AwqRowsNameTheLayoutAndTheMethod()
    {
        var text = CliHarness.Run("diff", RequiredArtifact.MiniLmModel, models.Awq);
        var json = CliHarness.Run("diff", RequiredArtifact.MiniLmModel, models.Awq, "--json").Json();

        Assert.Equal(0, text.ExitCode);
        var w4 = json.GetProperty("linears")[0].GetProperty("w4");
        Assert.Equal((4, 128, true), (w4.GetProperty("bits").GetInt32(), w4.GetProperty("block_size").GetInt32(), w4.GetProperty("zero_points").GetBoolean()));
        Assert.Contains("W4 g128 asym awq", text.Out);
    }

    private static long InitializerBytes(string path)
    {
        using var model = ModelFile.Load(path);
        return model.Graph.Initializers.Values.Sum(t => t.ByteLength);
    }
}
