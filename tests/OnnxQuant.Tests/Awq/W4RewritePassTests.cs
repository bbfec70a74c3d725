using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Passes;
using OnnxQuant.Passes.W8A8;
using OnnxQuant.Quantization;
using IR = OnnxQuant.IR;

namespace OnnxQuant.Tests.Awq;

/// <summary>
/// The rewrite on a hand-built graph with every shape it must handle: a 3-D MatMul with a bias Add, a Gemm with
/// transB, alpha, beta and C, and a logits MatMul that is a graph output (lm_head). ORT's CPU kernel runs the result
/// and must match X · dequant(W) (+ b) chained in double precision from the quantizer's fake-quant weights.
/// </summary>
public sealed class W4RewritePassTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData(false, 72, 32, Int4Scheme.Asymmetric)]   // K = 72: 3 blocks of 32, the last one padded
    [InlineData(true, 72, 32, Int4Scheme.Asymmetric)]
    [InlineData(false, 64, 16, Int4Scheme.Symmetric)]
    [InlineData(true, 128, 64, Int4Scheme.Symmetric)]
    public void RewrittenGraphMatchesFakeQuantReference(bool fp16, int k, int block, Int4Scheme scheme)
    {
        var sketch = new TwoLinearGraph(k, n1: 40, n2: 24, vocab: 48, fp16);
        using var model = sketch.Build();
        var linears = LinearNode.FindAll(model.Graph);
        var quant = new Int4QuantOptions { BlockSize = block, Scheme = scheme, ScaleType = sketch.Type };
        var fakeQuant = linears.ToDictionary(l => l.Name, l =>
        {
            var w = l.ReadWeightKN(model.Graph);
            Int4BlockQuantizer.FakeQuantizeInPlace(w, l.K, l.N, quant);
            return w;
        });
        fakeQuant.Remove("head");    // lm_head is kept in float by default
        var biases = linears.ToDictionary(l => l.Name, l => l.ReadBias(model.Graph));

        var result = new W4RewritePass(new W4RewriteOptions { Quantization = quant with { ScaleType = TensorProto.Types.DataType.Float }, AccuracyLevel = 1 })
            .Run(model, new PassContext());
        Assert.True(result.Changed);
        GraphValidator.Validate(model.Graph, "after w4");

        var g = model.Graph;
        var nbits = g.Nodes.Where(n => n.IsMicrosoft("MatMulNBits")).ToList();
        Assert.Equal(2, nbits.Count);
        Assert.Single(g.Nodes, n => n.IsOnnx("MatMul"));            // the lm_head stays
        Assert.DoesNotContain(g.Nodes, n => n.IsOnnx("Gemm") || n.IsOnnx("Add"));
        Assert.Equal(1, model.OpsetVersion(Nodes.MicrosoftDomain));
        foreach (var node in nbits)
        {
            Assert.Equal(6, node.Input.Count);                          // bias folded into input 5, g_idx empty
            Assert.Equal("", node.Input[4]);
            Assert.Equal(block, node.GetInt("block_size", 0));
            Assert.Equal(4, node.GetInt("bits", 0));
            Assert.Equal(1, node.GetInt("accuracy_level", -1));
            var scales = g.GetInitializer(node.Input[2])!;
            Assert.Equal(sketch.Type, scales.DataType);
            Assert.Equal(scheme == Int4Scheme.Symmetric, node.Input[3].Length == 0);
            Assert.Equal(sketch.Type, g.GetInitializer(node.Input[5])!.DataType);
        }
        var fc1 = nbits.Single(n => n.Name == "fc1");
        Assert.Equal(k, fc1.GetInt("K", 0));
        Assert.Equal(new long[] { 40, (k + block - 1) / block, block / 2 }, g.GetInitializer(fc1.Input[1])!.Shape);

        string path = _temp.File("w4.onnx");
        ModelFile.Save(model, path);
        var (y, logits) = sketch.RunOrt(path);
        var (refY, refLogits) = sketch.Reference(fakeQuant, biases);
        AssertClose(refY, y, fp16 ? 3e-3 : 1e-4, "Y");
        AssertClose(refLogits, logits, fp16 ? 3e-3 : 1e-4, "logits");
    }

    [Fact]
    public void IncludeLmHeadQuantizesTheLogitsProjection()
    {
        var sketch = new TwoLinearGraph(64, 32, 16, 40, fp16: false);
        using var model = sketch.Build();
        new W4RewritePass(new W4RewriteOptions { Selection = new LinearSelection(includeLmHead: true), Quantization = new() { BlockSize = 32 } }).Run(model, new PassContext());
        Assert.Equal(3, model.Graph.Nodes.Count(n => n.IsMicrosoft("MatMulNBits")));
        var head = model.Graph.Nodes.Single(n => n.Output[0] == "logits");
        Assert.Equal(4, head.Input.Count);     // no bias: zero points are the last input
        string path = _temp.File("head.onnx");
        ModelFile.Save(model, path);
        var (_, logits) = sketch.RunOrt(path);
        Assert.Equal(5 * 40, logits.Length);
    }

    // The theoretical bound of round-to-nearest on the output: each weight moves by at most half its block's step,
    // so |Y - Y_q| <= sum_k |x_k| * |scale(k, n)| / 2 (asymmetric scheme; fp32).
    [Fact]
    public void RoundToNearestOutputErrorIsWithinTheBound()
    {
        var sketch = new TwoLinearGraph(96, 48, 16, 16, fp16: false);
        using var model = sketch.Build();
        var fc1 = LinearNode.FindAll(model.Graph).Single(l => l.Name == "fc1");
        var w = fc1.ReadWeightKN(model.Graph);
        var q = Int4BlockQuantizer.Quantize(w, fc1.K, fc1.N, new Int4QuantOptions { BlockSize = 32 });
        var x = sketch.Input;
        int rows = x.Length / fc1.K;
        double worstRatio = 0, meanRatio = 0;
        var deq = q.Dequantize();
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < fc1.N; c++)
            {
                double err = 0, bound = 0;
                for (int j = 0; j < fc1.K; j++)
                {
                    double xv = x[r * fc1.K + j];
                    err += xv * (w[j * fc1.N + c] - deq[j * fc1.N + c]);
                    bound += Math.Abs(xv) * Math.Abs(q.Scales[c * q.KBlocks + j / 32]) / 2;
                }
                worstRatio = Math.Max(worstRatio, Math.Abs(err) / bound);
                meanRatio += Math.Abs(err) / bound / (rows * fc1.N);
            }
        Assert.True(worstRatio <= 1.0 + 1e-5, $"error reached {worstRatio:g4} of the bound");
        Assert.True(meanRatio > 0.01, "the bound is vacuous here: errors are far below it");
    }

    private static void AssertClose(double[] expected, float[] actual, double relative, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = expected.Max(Math.Abs), worst = 0;
        for (int i = 0; i < expected.Length; i++) worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
        Assert.True(worst <= relative * scale, $"{what}: max |ORT - reference| = {worst:g3}, max |y| = {scale:g3}");
    }
}

/// <summary>
/// X [1, 5, K] -> MatMul(W1 [K, n1]) + b1 -> Reshape [5, n1] -> Gemm(W2 stored [n2, n1], transB, alpha 0.5, beta 2, C b2)
/// -> Identity -> Y; and the Reshape's output -> MatMul(W3 [n1, vocab]) -> logits (a graph output).
/// </summary>
internal sealed class TwoLinearGraph
{
    private readonly int _k, _n1, _n2, _vocab;
    private readonly float[] _w1, _b1, _w2, _b2, _w3;

    public TwoLinearGraph(int k, int n1, int n2, int vocab, bool fp16)
    {
        (_k, _n1, _n2, _vocab) = (k, n1, n2, vocab);
        Type = fp16 ? TensorProto.Types.DataType.Float16 : TensorProto.Types.DataType.Float;
        var rng = new Random(k + n1);
        _w1 = Round(AwqTestData.Gaussian(rng, k * n1, 0.1f));
        _b1 = Round(AwqTestData.Gaussian(rng, n1, 0.5f));
        _w2 = Round(AwqTestData.Gaussian(rng, n2 * n1, 0.1f));
        _b2 = Round(AwqTestData.Gaussian(rng, n2, 0.5f));
        _w3 = Round(AwqTestData.Gaussian(rng, n1 * vocab, 0.1f));
        Input = Round(AwqTestData.Gaussian(rng, 5 * k, 1f));
    }

    public TensorProto.Types.DataType Type { get; }

    public float[] Input { get; }

    private float[] Round(float[] v) => Type == TensorProto.Types.DataType.Float16 ? v.Select(x => (float)(Half)x).ToArray() : v;

    public OnnxModel Build()
    {
        var proto = new ModelProto { IrVersion = 9, ProducerName = "onnxquant-tests", Graph = new GraphProto { Name = "two-linear" } };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        proto.Graph.Input.Add(ValueInfo("X", 1, 5, _k));
        proto.Graph.Output.Add(ValueInfo("Y", 5, _n2));
        proto.Graph.Output.Add(ValueInfo("logits", 5, _vocab));
        var model = OnnxModel.FromProto(proto);
        var g = model.Graph;
        g.SetInitializer(IR.Tensor.FromFloats("W1", _w1, new long[] { _k, _n1 }, Type));
        g.SetInitializer(IR.Tensor.FromFloats("b1", _b1, new long[] { _n1 }, Type));
        g.SetInitializer(IR.Tensor.FromFloats("W2", _w2, new long[] { _n2, _n1 }, Type));
        g.SetInitializer(IR.Tensor.FromFloats("b2", _b2, new long[] { _n2 }, Type));
        g.SetInitializer(IR.Tensor.FromFloats("W3", _w3, new long[] { _n1, _vocab }, Type));
        g.SetInitializer(IR.Tensor.FromInt64s("shape2d", new long[] { 5, _n1 }, new long[] { 2 }));
        g.AddNode(Nodes.Create("MatMul", new[] { "X", "W1" }, new[] { "h0" }, "fc1"));
        g.AddNode(Nodes.Create("Add", new[] { "b1", "h0" }, new[] { "h1" }, "fc1_bias"));   // bias first: either order is a bias
        g.AddNode(Nodes.Create("Reshape", new[] { "h1", "shape2d" }, new[] { "h2" }, "flatten"));
        g.AddNode(Nodes.Create("Gemm", new[] { "h2", "W2", "b2" }, new[] { "g" }, "fc2").With("transB", 1L).With("alpha", 0.5f).With("beta", 2f));
        g.AddNode(Nodes.Create("Identity", new[] { "g" }, new[] { "Y" }, "out"));
        g.AddNode(Nodes.Create("MatMul", new[] { "h2", "W3" }, new[] { "logits" }, "head"));
        return model;
    }

    /// <summary>Y and logits in double from the given logical weights (by node name) and biases.</summary>
    public (double[] Y, double[] Logits) Reference(IReadOnlyDictionary<string, float[]> weights, IReadOnlyDictionary<string, float[]?> biases)
    {
        var h = Product(Input.Select(v => (double)v).ToArray(), weights["fc1"], 5, _k, _n1, biases["fc1"]);
        if (Type == TensorProto.Types.DataType.Float16) h = h.Select(v => (double)(float)(Half)v).ToArray();
        var y = Product(h, weights["fc2"], 5, _n1, _n2, biases["fc2"]);
        var head = weights.TryGetValue("head", out var w3) ? w3 : _w3;
        return (y, Product(h, head, 5, _n1, _vocab, null));
    }

    private static double[] Product(double[] x, float[] w, int m, int k, int n, float[]? bias)
    {
        var y = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = bias?[j] ?? 0;
                for (int t = 0; t < k; t++) s += x[i * k + t] * w[t * n + j];
                y[i * n + j] = s;
            }
        return y;
    }

    public (float[] Y, float[] Logits) RunOrt(string path)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
        using var session = new InferenceSession(path, options);
        var shape = new[] { 1, 5, _k };
        var input = Type == TensorProto.Types.DataType.Float16
            ? NamedOnnxValue.CreateFromTensor("X", new DenseTensor<Float16>(Input.Select(v => new Float16(BitConverter.HalfToUInt16Bits((Half)v))).ToArray(), shape))
            : NamedOnnxValue.CreateFromTensor("X", new DenseTensor<float>(Input, shape));
        using var results = session.Run(new[] { input });
        float[] Read(string name)
        {
            var v = results.Single(r => r.Name == name);
            return Type == TensorProto.Types.DataType.Float16 ? v.AsTensor<Float16>().Select(h => h.ToFloat()).ToArray() : v.AsTensor<float>().ToArray();
        }
        return (Read("Y"), Read("logits"));
    }

    private ValueInfoProto ValueInfo(string name, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)Type, Shape = shape } } };
    }
}
