using OnnxQuant.Tests.Cli;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Tables;

/// <summary>
/// `awq --quantize-embeddings 4` on MiniLM (issue 14's target: total size at most 20 MB), and what inspect and diff say
/// of the embedding afterwards. One RTN run with a short held-out check.
/// </summary>
public sealed class MiniLmEmbeddingTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [ArtifactFact(Artifact.MiniLm)]
    public void Four_bit_embeddings_bring_MiniLM_under_20_MB_and_inspect_and_diff_show_them()
    {
        string output = _folder.File("minilm.w4e4.onnx");
        var run = CliHarness.Run("awq", RequiredArtifact.MiniLmModel, "-o", output, "--method", "rtn", "--quantize-embeddings", "4",
            "--verify-samples", "48", "--device", "cpu", "--json");
        Assert.True(run.ExitCode == 0, run.Error);
        var json = run.Json();
        var table = Assert.Single(json.GetProperty("tables").EnumerateArray());
        Assert.Equal("embeddings.word_embeddings.weight", table.GetProperty("tensor").GetString());
        Assert.Equal((4, 64, 30522, 384), (table.GetProperty("bits").GetInt32(), table.GetProperty("block_size").GetInt32(),
            table.GetProperty("rows").GetInt32(), table.GetProperty("width").GetInt32()));
        // 4-bit codes (half a byte each), one fp32 scale and one nibble of zero point per 64 values.
        Assert.Equal(30522L * 384 / 2 + 30522L * 6 * 4 + 30522L * 3, table.GetProperty("bytes_after").GetInt64());
        Assert.Equal(30522L * 384 * 4, table.GetProperty("bytes_before").GetInt64());
        Assert.InRange(table.GetProperty("weight_error").GetDouble(), 0.05, 0.15);   // measured 0.091
        long bytes = json.GetProperty("bytes_after").GetInt64();
        Assert.True(bytes <= 20_000_000, $"{bytes} bytes");                           // measured 13.7 MB (W4 alone: 53.9 MB)
        // W4 RTN alone measured 0.948 on the full 256 sentences; the 4-bit table costs ~0.001 of it there.
        double cosine = json.GetProperty("verification").GetProperty("mean_cosine").GetDouble();
        Assert.True(cosine > 0.93, $"mean cosine {cosine}");

        var inspect = CliHarness.Run("inspect", output, "--json").Json();
        var embedding = Assert.Single(inspect.GetProperty("embeddings").EnumerateArray());
        Assert.Equal(("GatherBlockQuantized 4-bit", 64, 384), (embedding.GetProperty("form").GetString(), embedding.GetProperty("block_size").GetInt32(),
            embedding.GetProperty("width").GetInt32()));

        var diff = CliHarness.Run("diff", RequiredArtifact.MiniLmModel, output, "--json");
        Assert.True(diff.ExitCode == 0, diff.Error);
        var change = Assert.Single(diff.Json().GetProperty("embeddings").EnumerateArray());
        Assert.Equal(("GatherBlockQuantized", 4, true), (change.GetProperty("op_after").GetString(), change.GetProperty("bits").GetInt32(),
            change.GetProperty("zero_points").GetBoolean()));
        Assert.Equal(table.GetProperty("bytes_after").GetInt64(), change.GetProperty("bytes_after").GetInt64());
        Assert.Equal(30522L * 384 * 4, change.GetProperty("bytes_before").GetInt64());
    }
}
