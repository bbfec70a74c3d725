using System.Text.Json;
using Google.Protobuf;
using OnnxQuant.IR;
using OnnxQuant.Tests.Analysis;

namespace OnnxQuant.Tests.Cli;

public sealed class InspectCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("onnxquant-inspect-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>x -> LayerNormalization -> q/k/v MatMuls (v with a bias Add), plus a Gemm(transB) on x: 3 MatMul + 1 Gemm.</summary>
    private string SaveAttentionInput()
    {
        var s = new GraphSketch();
        s.Input("x", "batch", "sequence", 16);
        s.Node("LayerNormalization", ["x", s.Vector("ln.weight", 16), s.Vector("ln.bias", 16)], ["h"], "input_layernorm");
        s.Node("MatMul", ["h", s.Matrix("wq", 16, 16)], ["q"], "q_proj");
        s.Node("MatMul", ["h", s.Matrix("wk", 16, 8)], ["k"], "k_proj");
        s.Node("MatMul", ["h", s.Matrix("wv", 16, 8)], ["v_mm"], "v_proj");
        s.Node("Add", ["v_mm", s.Vector("v.bias", 8)], ["v"], "v_bias");
        s.Node("Gemm", ["x", s.Matrix("wg", 4, 16)], ["g"], "head").With("transB", 1L);
        foreach (var o in new[] { "q", "k", "v", "g" }) s.Output(o);
        string path = Path.Combine(_dir, "attn.onnx");
        File.WriteAllBytes(path, s.ToModel().ToByteArray());
        return path;
    }

    [Fact]
    public void JsonOutputHoldsCountsLinearsAndProducers()
    {
        string path = SaveAttentionInput();

        var result = CliHarness.Run("inspect", path, "--json");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("", result.Error);
        var json = result.Json(); // stdout is the JSON document and nothing else
        Assert.Equal(6, json.GetProperty("node_count").GetInt32());
        Assert.Equal(3, json.GetProperty("quantizable_mat_muls").GetInt32());
        Assert.Equal(1, json.GetProperty("quantizable_gemms").GetInt32());
        Assert.Equal(16 + 16 + 256 + 128 + 128 + 8 + 64, json.GetProperty("parameter_count").GetInt64());
        Assert.Equal(new FileInfo(path).Length, json.GetProperty("files").GetProperty("model_bytes").GetInt64());
        Assert.Equal(["batch", "sequence", "16"], json.GetProperty("inputs")[0].GetProperty("shape").EnumerateArray().Select(d => d.GetString()));

        var linears = json.GetProperty("linears").EnumerateArray().ToDictionary(l => l.GetProperty("name").GetString()!);
        Assert.Equal(["q_proj", "k_proj", "v_proj", "head"], linears.Keys);
        foreach (var name in new[] { "q_proj", "k_proj", "v_proj" })
        {
            Assert.Equal("LayerNorm", linears[name].GetProperty("producer_kind").GetString());
            Assert.Equal("input_layernorm", linears[name].GetProperty("producer_node").GetString());
            Assert.Equal("ln.weight", linears[name].GetProperty("gamma").GetString());
        }
        Assert.True(linears["v_proj"].GetProperty("bias").GetBoolean());
        Assert.False(linears["q_proj"].GetProperty("bias").GetBoolean());
        Assert.Equal((16, 4), (linears["head"].GetProperty("k").GetInt32(), linears["head"].GetProperty("n").GetInt32()));
        Assert.Equal("Other", linears["head"].GetProperty("producer_kind").GetString());
    }

    [Fact]
    public void TextOutputEndsWithTheSummaryLine()
    {
        string path = SaveAttentionInput();

        var result = CliHarness.Run("inspect", path);

        Assert.Equal(0, result.ExitCode);
        var lines = result.Out.TrimEnd().Split('\n');
        Assert.Equal("3 MatMul + 1 Gemm quantizable, 616 parameters", lines[^1].TrimEnd());   // no kept linear in this graph
        Assert.Contains(lines, l => l.Contains("v_proj") && l.Contains("16 x 8") && l.Contains("input_layernorm, gamma ln.weight"));
        Assert.Contains(lines, l => l.Contains("opsets ai.onnx 17"));
    }

    [Fact]
    public void MissingFileGivesExitCode3NamingTheFileWithoutStackTrace()
    {
        string missing = Path.Combine(_dir, "no-such-model.onnx");

        var result = CliHarness.Run("inspect", missing);

        Assert.Equal(3, result.ExitCode);
        Assert.Equal("", result.Out);
        Assert.StartsWith("error: ", result.Error);
        Assert.Contains(missing, result.Error);
        Assert.Contains("does not exist", result.Error);
        Assert.DoesNotContain(" at ", result.Error);
    }

    [Fact]
    public void AFileThatIsNotAModelGivesExitCode3()
    {
        string path = Path.Combine(_dir, "notes.onnx");
        File.WriteAllText(path, "this is not a protobuf at all, just some text that happens to end in .onnx\n");

        var result = CliHarness.Run("inspect", path, "--json");

        Assert.Equal(3, result.ExitCode);
        // With --json, stdout carries the error document (and nothing else); stderr the paragraph for people.
        Assert.Equal(3, result.Json().GetProperty("exit").GetInt32());
        Assert.Equal(path, result.Json().GetProperty("error").GetProperty("file").GetString());
        Assert.Contains(path, result.Error);
    }

    [Theory]
    [InlineData("inspect")]
    [InlineData("frobnicate", "x.onnx")]
    [InlineData("inspect", "a.onnx", "--no-such-option")]
    public void UsageErrorsGiveExitCode2(params string[] args)
    {
        var result = CliHarness.Run(args);

        Assert.Equal(2, result.ExitCode);
        Assert.Equal("", result.Out);
        Assert.Contains("--help", result.Error);
    }

    [Fact]
    public void HelpExitsZero()
    {
        var result = CliHarness.Run("inspect", "--help");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("--json", result.Out);
    }
}
