using Microsoft.ML.OnnxRuntime;
using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Passes;
using OnnxQuant.Quantization;
using OnnxQuant.Tests.OrtNode;
using OnnxQuant.Tests.Support;
using OnnxQuant.Tests.W8A8;
using Xunit.Abstractions;

namespace OnnxQuant.Tests.Quantization;

/// <summary>
/// The embeddings and head pass on a tied toy LM (input_ids -> Gather(E) -> MatMul(·, Transpose(E)) -> logits): what it
/// emits, what it shares, and that ONNX Runtime (C# and onnxruntime-node) and onnx.checker accept it.
/// </summary>
public sealed class EmbeddingHeadPassTests(ITestOutputHelper output) : IDisposable
{
    private const int Vocab = 75, Hidden = 64, Tokens = 9;
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static readonly long[] Ids = [0, 74, 3, 3, 41, 12, 1, 60, 7];

    private static OnnxModel TiedModel()
    {
        var proto = new ModelProto { IrVersion = 8, ProducerName = "onnxquant-tests", Graph = new GraphProto { Name = "tied" } }; // Debian's onnx checker reads IR 8
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        proto.Graph.Input.Add(GatherBlockQuantizedOrtTests.ValueInfo("input_ids", TensorProto.Types.DataType.Int64, 1, Tokens));
        proto.Graph.Output.Add(GatherBlockQuantizedOrtTests.ValueInfo("logits", TensorProto.Types.DataType.Float, 1, Tokens, Vocab));
        var model = OnnxModel.FromProto(proto);
        model.Graph.SetInitializer(Tensor.FromFloats("embed_tokens.weight", QuantTestData.Weight(Vocab, Hidden, seed: 9), [Vocab, Hidden]));
        model.Graph.AddNode(Nodes.Create("Gather", ["embed_tokens.weight", "input_ids"], ["hidden"], "/embed_tokens/Gather"));
        model.Graph.AddNode(Nodes.Create("Transpose", ["embed_tokens.weight"], ["embed_t"], "/lm_head/Transpose").With("perm", [1L, 0L]));
        model.Graph.AddNode(Nodes.Create("MatMul", ["hidden", "embed_t"], ["logits"], "/lm_head/MatMul"));
        return model;
    }

    private static EmbeddingReport Run(OnnxModel model, int? embeddingBits, int? headBits, int block = 32)
    {
        var selection = new LinearSelection(includeLmHead: headBits is not null, lmHeadBits: headBits);
        var context = new PassContext();
        new EmbeddingHeadPass(new EmbeddingHeadOptions { EmbeddingBits = embeddingBits, BlockSize = block, Selection = selection }).Run(model, context);
        return context.Analyses.Get<EmbeddingReport>("test");
    }

    [ArtifactTheory(Artifact.OnnxChecker, Artifact.OrtNode)]
    [InlineData(8)]
    [InlineData(4)]
    public void A_tied_head_at_the_embeddings_bits_shares_one_table_and_matches_the_reference(int bits)
    {
        var table = QuantTestData.Weight(Vocab, Hidden, seed: 9);
        using var model = TiedModel();
        var report = Run(model, bits, bits);

        var embedding = Assert.Single(report.Tables, t => t.Role == TableRole.Embedding);
        var head = Assert.Single(report.Tables, t => t.Role == TableRole.LmHead);
        Assert.Equal((bits, 32, false), (embedding.Bits!.Value, embedding.BlockSize, embedding.Symmetric));
        Assert.Equal("embed_tokens.weight", head.SharedWith);
        Assert.Equal(0, head.BytesAfter);
        // One code tensor for both: [V, k_blocks, block * bits / 8] read by MatMulNBits, and through a Reshape by the Gather.
        var graph = model.Graph;
        var codes = Assert.Single(graph.Initializers.Values, t => t.DataType == TensorProto.Types.DataType.Uint8 && t.Shape.Count == 3);
        Assert.Equal(new long[] { Vocab, Hidden / 32, 32 * bits / 8 }, codes.Shape);
        Assert.Null(graph.GetInitializer("embed_tokens.weight"));
        var gather = Assert.Single(graph.Nodes, n => n.OpType == RowBlockPacker.GatherOp);
        var matmul = Assert.Single(graph.Nodes, n => n.OpType == "MatMulNBits");
        Assert.Equal(graph.ProducerIs(gather.Input[0], "Reshape")!.Input[0], matmul.Input[1]);
        Assert.Equal(gather.Input[2], matmul.Input[2]);
        long expectedBytes = Vocab * Hidden * bits / 8 + Vocab * 2 * 4 + Vocab * (bits == 8 ? 2 : 1) + 16;
        Assert.Equal(expectedBytes, graph.Initializers.Values.Sum(t => t.ByteLength));
        Assert.Equal(Vocab * Hidden * 4, embedding.BytesBefore);

        string path = _folder.File($"tied{bits}.onnx");
        ModelFile.Save(model, path);
        var logits = OrtRunner.RunOnce(path, Feeds(), GraphOptimizationLevel.ORT_ENABLE_ALL)["logits"].Values;
        var q = RowBlockQuantizer.Quantize(table, Vocab, Hidden, bits, 32, false);
        var expected = Logits(GatherBlockQuantizedOrtTests.Reference(q), GatherBlockQuantizedOrtTests.Reference(q));
        double maxDiff = expected.Zip(logits, (e, a) => Math.Abs(e - a)).Max(), maxY = expected.Max(Math.Abs);
        output.WriteLine($"{bits}-bit tied: max |ORT - reference| {maxDiff:g3} of max |logit| {maxY:g3}; table error {embedding.WeightError:0.0000}");
        Assert.True(maxDiff <= 1e-4 * maxY, $"logits differ from dequant(E)[ids] · dequant(E)ᵀ by {maxDiff}");
        // And the quantization is close to the float model: 8 bits to ~1%, 4 bits to ~15% of the table's norm.
        Assert.InRange(embedding.WeightError!.Value, bits == 8 ? 1e-3 : 0.03, bits == 8 ? 0.01 : 0.15);

        string? checker = OnnxChecker.Check(path);
        Assert.True(checker is null, checker);
        var node = OrtNodeRunner.Run(path, Feeds())["logits"].Values;
        Assert.True(node.Zip(logits, (a, b) => Math.Abs(a - b)).Max() <= 1e-5 * maxY, "onnxruntime-node gives other logits");
    }

    [ArtifactFact(Artifact.OnnxChecker)]
    public void A_4_bit_embedding_and_an_8_bit_head_get_a_table_each_and_the_summary_says_so()
    {
        var table = QuantTestData.Weight(Vocab, Hidden, seed: 9);
        using var model = TiedModel();
        var report = Run(model, 4, 8);
        var embedding = Assert.Single(report.Tables, t => t.Role == TableRole.Embedding);
        var head = Assert.Single(report.Tables, t => t.Role == TableRole.LmHead);
        Assert.Null(head.SharedWith);
        Assert.Contains("each has its own table", head.Note);
        Assert.Equal(Vocab * Hidden / 2 + Vocab * 2 * 4 + Vocab, embedding.BytesAfter);     // 4-bit codes, 2 scales and 2 nibbles a row
        Assert.Equal(Vocab * Hidden + Vocab * 2 * 4 + Vocab * 2, head.BytesAfter);        // 8-bit codes, 2 scales and 2 zero points a row
        Assert.Equal(2, model.Graph.Initializers.Values.Count(t => t.DataType == TensorProto.Types.DataType.Uint8 && t.Name.Contains("_Q")));

        string path = _folder.File("split.onnx");
        ModelFile.Save(model, path);
        var logits = OrtRunner.RunOnce(path, Feeds())["logits"].Values;
        var e4 = GatherBlockQuantizedOrtTests.Reference(RowBlockQuantizer.Quantize(table, Vocab, Hidden, 4, 32, false));
        var h8 = GatherBlockQuantizedOrtTests.Reference(RowBlockQuantizer.Quantize(table, Vocab, Hidden, 8, 32, false));
        var expected = Logits(e4, h8);
        Assert.True(expected.Zip(logits, (e, a) => Math.Abs(e - a)).Max() <= 1e-4 * expected.Max(Math.Abs));
        Assert.Null(OnnxChecker.Check(path));
    }

    [Fact]
    public void The_head_alone_keeps_the_float_table_for_the_gather()
    {
        using var model = TiedModel();
        var report = Run(model, null, 8);
        var head = Assert.Single(report.Tables);
        Assert.Equal((TableRole.LmHead, 8), (head.Role, head.Bits!.Value));
        Assert.Contains("the embedding stays in float", head.Note);
        Assert.NotNull(model.Graph.GetInitializer("embed_tokens.weight"));
        Assert.DoesNotContain(model.Graph.Nodes, n => n.OpType == "Transpose");
        Assert.Equal(KeepReason.LmHeadOwnBits, LinearAnalysis.Analyze(TiedModel().Graph, new LinearSelection(includeLmHead: true, lmHeadBits: 8)).Find("/lm_head/MatMul")!.Reason);
    }

    [Theory]
    [InlineData(384, 4, 128, 64, false)]   // MiniLM: 3 blocks of 128 a row would pack zero points differently on CPU and CUDA
    [InlineData(384, 8, 128, 128, false)]
    [InlineData(48, 4, 32, 16, true)]      // 3 blocks of 16 at best: symmetric, no zero points
    [InlineData(4096, 4, 128, 128, false)]
    public void The_gather_layout_is_one_both_kernels_read_alike(int width, int bits, int requested, int block, bool symmetric)
    {
        var layout = EmbeddingHeadPass.GatherLayout(width, bits, requested, false, out _);
        Assert.Equal((block, symmetric), layout);
        Assert.Null(EmbeddingHeadPass.GatherLayout(40, 4, 32, false, out string? why));
        Assert.Contains("not a multiple of 16", why);
    }

    private static Dictionary<string, OrtFeed> Feeds() => new() { ["input_ids"] = OrtFeed.Int64(Ids, 1, Tokens) };

    // dequant(E)[ids] · dequant(H)ᵀ, both [V, H] row-major.
    private static double[] Logits(float[] embedding, float[] head)
    {
        var result = new double[Tokens * Vocab];
        for (int t = 0; t < Tokens; t++)
            for (int v = 0; v < Vocab; v++)
            {
                double sum = 0;
                for (int h = 0; h < Hidden; h++)
                    sum += (double)embedding[Ids[t] * Hidden + h] * head[v * Hidden + h];
                result[t * Vocab + v] = sum;
            }
        return result;
    }
}
