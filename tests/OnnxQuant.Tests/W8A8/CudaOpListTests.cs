using Onnx;
using OnnxQuant.Fixtures;
using OnnxQuant.IR;
using OnnxQuant.Passes;
using OnnxQuant.Passes.W8A8;

namespace OnnxQuant.Tests.W8A8;

/// <summary>
/// The int8 and dynamic graphs must run int8 on the CUDA EP (docs/architecture.md, "W8A8 forms and execution providers"): every node the rewrite adds is an op the
/// CUDA EP registers, MatMulInteger is int8 x int8 with no zero-point inputs, and nothing CPU-only appears
/// (DynamicQuantizeLinear, QLinearMatMul, MatMulIntegerToFloat, DynamicQuantizeMatMul).
/// </summary>
public class CudaOpListTests
{
    // CUDA EP registrations among the ops the rewrite may emit (docs/architecture.md, "W8A8 forms and execution providers", and the standard float ops).
    private static readonly HashSet<string> Int8Ops = ["QuantizeLinear", "MatMulInteger", "Cast", "Mul", "Add", "Gather", "MatMul"];
    private static readonly HashSet<string> DynamicOps = ["Abs", "ReduceMax", "Div", "Max", "Round", "Clip", "Cast", "MatMulInteger", "Mul", "Add"];
    private static readonly HashSet<string> CpuOnly = ["DynamicQuantizeLinear", "QLinearMatMul", "MatMulIntegerToFloat", "DynamicQuantizeMatMul"];

    public static TheoryData<W8A8Format, FixtureFamily, bool> Cases() => new()
    {
        { W8A8Format.Int8, FixtureFamily.TorchLlama, false },
        { W8A8Format.Int8, FixtureFamily.TorchLlama, true },
        { W8A8Format.Int8, FixtureFamily.Bert, false },
        { W8A8Format.Dynamic, FixtureFamily.TorchLlama, true },
        { W8A8Format.Dynamic, FixtureFamily.Bert, false },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void RewrittenLinearsUseOnlyCudaEpOps(W8A8Format format, FixtureFamily family, bool fp16)
    {
        var options = W8A8TestKit.OutlierLlama(fp16) with { Family = family, Layers = 1 };
        using var model = FixtureModels.BuildModel(options);
        var before = model.Graph.Nodes.Select(n => n.Name).ToHashSet();
        var stats = W8A8TestKit.Calibrate(model, options.Vocab, samples: 4);
        W8A8TestKit.Quantize(model, stats, new W8A8Options { Format = format }, new SmoothQuantOptions { InsertMul = true });
        var graph = model.Graph;

        var added = graph.Nodes.Where(n => !before.Contains(n.Name)).ToList();
        Assert.NotEmpty(added);
        var allowed = format == W8A8Format.Int8 ? Int8Ops : DynamicOps;
        Assert.All(added, n => Assert.True(allowed.Contains(n.OpType) && n.Domain is "" or "ai.onnx", $"{n.Describe()} is not on the CUDA EP list"));
        Assert.All(graph.Nodes, n => Assert.DoesNotContain(n.OpType, CpuOnly));

        var integerMatMuls = graph.Nodes.Where(n => n.OpType == "MatMulInteger").ToList();
        Assert.Equal(7, integerMatMuls.Count); // one layer: q k v o and the two MLP linears, plus lm_head (kept) or the pooler
        foreach (var mm in integerMatMuls)
        {
            Assert.Equal(2, mm.Input.Count); // no zero-point inputs: symmetric
            Assert.Equal(TensorProto.Types.DataType.Int8, graph.GetInitializer(mm.Input[1])!.DataType);
            var producer = graph.Producer(mm.Input[0])!;
            if (format == W8A8Format.Int8)
            {
                Assert.Equal("QuantizeLinear", producer.OpType);
                var zeroPoint = graph.GetInitializer(producer.Input[2])!;
                Assert.Equal(TensorProto.Types.DataType.Int8, zeroPoint.DataType);
                Assert.All(zeroPoint.RawBytes.ToArray(), b => Assert.Equal(0, b));
            }
            else
            {
                Assert.Equal("Cast", producer.OpType);
                Assert.Equal((long)TensorProto.Types.DataType.Int8, producer.GetInt("to", 0));
            }
        }
    }
}
