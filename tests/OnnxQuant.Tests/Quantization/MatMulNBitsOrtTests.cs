using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;
using OnnxQuant.IO;
using OnnxQuant.IR;
using IR = OnnxQuant.IR;
using OnnxQuant.Quantization;
using Xunit.Abstractions;

namespace OnnxQuant.Tests.Quantization;

/// <summary>
/// The packed MatMulNBits node, saved with ModelFile and run by ONNX Runtime's CPU kernel, computes
/// X · dequant(W) (+ bias), where dequant is evaluated here straight from the codes, scales and zero points.
/// </summary>
public sealed class MatMulNBitsOrtTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "onnxquant-tests", "mmnbits-" + Guid.NewGuid().ToString("N"));
    private readonly ITestOutputHelper _output;

    public MatMulNBitsOrtTests(ITestOutputHelper output)
    {
        _output = output;
        Directory.CreateDirectory(_folder);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    public static TheoryData<int, int, int, int, Int4Scheme, bool, bool> Cases => new()
    {
        // M, K, N, block, scheme, fp16, bias
        { 3, 200, 24, 64, Int4Scheme.Asymmetric, false, true },  // K padded to 4 blocks of 64
        { 2, 77, 16, 32, Int4Scheme.Symmetric, false, false },   // K padded to 3 blocks of 32 (odd k_blocks)
        { 2, 77, 16, 32, Int4Scheme.Asymmetric, true, true },
        { 3, 200, 24, 64, Int4Scheme.Symmetric, true, true },
        { 1, 256, 8, 128, Int4Scheme.Asymmetric, false, false },
        { 2, 96, 40, 16, Int4Scheme.Asymmetric, false, false },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void OrtMatchesTheIndependentDequantizedProduct(int m, int k, int n, int blockSize, Int4Scheme scheme, bool fp16, bool withBias)
    {
        var type = fp16 ? TensorProto.Types.DataType.Float16 : TensorProto.Types.DataType.Float;
        var w = QuantTestData.Weight(k, n, seed: k * 7 + n);
        var x = QuantTestData.Activations(m, k, seed: m + k);
        var bias = withBias ? QuantTestData.Bias(n, seed: n) : null;
        if (fp16)
        {
            x = QuantTestData.ThroughHalf(x); // what the model's fp16 input really holds
            bias = bias is null ? null : QuantTestData.ThroughHalf(bias);
        }
        var q = Int4BlockQuantizer.Quantize(w, k, n, new Int4QuantOptions { BlockSize = blockSize, Scheme = scheme, ScaleType = type });
        var packed = MatMulNBitsPacker.Pack(q, "w", type, bias);

        var expected = QuantTestData.MatMul(x, DequantizeFromParts(q), m, k, n, bias);
        var tolerance = Tolerances(x, DequantizeFromParts(q), m, k, n, expected, fp16);
        var actual = RunOrt(packed, x, m, k, n, type);
        double worst = WorstRatio(expected, actual, tolerance, out double maxDiff);
        _output.WriteLine($"max |ORT - reference| = {maxDiff:g3} (max |y| {QuantTestData.MaxAbs(expected):g3}), worst diff / tolerance = {worst:g3}");
        Assert.True(worst <= 1, $"ORT differs from X·dequant(W): max diff {maxDiff}, {worst:g3}x the tolerance");

        // The same bytes with the nibbles of B swapped must be clearly wrong: the test can see a layout mistake.
        var swapped = packed.B.RawBytes.ToArray().Select(b => (byte)((b >> 4) | (b << 4))).ToArray();
        var broken = packed with { B = IR.Tensor.FromUInt8s(packed.B.Name, swapped, packed.B.Shape) };
        var wrong = RunOrt(broken, x, m, k, n, type);
        double wrongWorst = WorstRatio(expected, wrong, tolerance, out double wrongDiff);
        _output.WriteLine($"nibble-swapped: max diff {wrongDiff:g3}, {wrongWorst:g3}x the tolerance");
        Assert.True(wrongWorst > 50, $"swapped nibbles gave only {wrongWorst:g3}x the tolerance");
        Assert.True(wrongDiff > 0.05 * QuantTestData.MaxAbs(expected));
    }

    public static TheoryData<int, int, int, int, Int4Scheme, bool> EightBitCases => new()
    {
        // M, K, N, block, scheme, fp16: ONNX Runtime 1.31's CPU kernel takes bits = 8 (mixed precision emits it)
        { 3, 200, 24, 64, Int4Scheme.Asymmetric, false },  // K padded, one zero point byte per block
        { 2, 256, 16, 128, Int4Scheme.Symmetric, false },  // default zero point 128
        { 2, 77, 16, 32, Int4Scheme.Asymmetric, true },
    };

    [Theory]
    [MemberData(nameof(EightBitCases))]
    public void OrtRunsEightBitBlocksAsTheDequantizedProduct(int m, int k, int n, int blockSize, Int4Scheme scheme, bool fp16)
    {
        var type = fp16 ? TensorProto.Types.DataType.Float16 : TensorProto.Types.DataType.Float;
        var w = QuantTestData.Weight(k, n, seed: k * 5 + n);
        var x = QuantTestData.Activations(m, k, seed: m + 2 * k);
        if (fp16)
            x = QuantTestData.ThroughHalf(x);
        var options = new Int4QuantOptions { BlockSize = blockSize, Scheme = scheme, ScaleType = type };
        var q = OnnxQuant.Gptq.GptqQuantizer.Quantize(w, k, n, null, options, bits: 8);
        Assert.Equal(8, q.Bits);
        Assert.Contains(q.Codes, c => c > 15); // really 8-bit codes
        var packed = MatMulNBitsPacker.Pack(q, "w", type);
        Assert.Equal(new long[] { n, q.KBlocks, blockSize }, packed.B.Shape);
        Assert.Equal(8, MatMulNBitsPacker.BuildNode(packed, "A", "Y", "n").Attribute.Single(a => a.Name == "bits").I);

        var dequantized = DequantizeFromParts(q);
        // 8 bits: the weight error is at most half a step of 1/255 of the block range.
        double worstWeight = w.Zip(dequantized, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(worstWeight < 0.01 * w.Max(Math.Abs), $"8-bit weight error {worstWeight}");
        var expected = QuantTestData.MatMul(x, dequantized, m, k, n, null);
        var tolerance = Tolerances(x, dequantized, m, k, n, expected, fp16);
        var actual = RunOrt(packed, x, m, k, n, type);
        double worst = WorstRatio(expected, actual, tolerance, out double maxDiff);
        _output.WriteLine($"8-bit: max |ORT - reference| = {maxDiff:g3}, worst diff / tolerance = {worst:g3}");
        Assert.True(worst <= 1, $"ORT's 8-bit MatMulNBits differs from X·dequant(W): max diff {maxDiff}, {worst:g3}x the tolerance");
    }

    /// <summary>dequant(W) [K, N] evaluated from the parts, independently of QuantizedBlocks.Dequantize.</summary>
    private static float[] DequantizeFromParts(QuantizedBlocks q)
    {
        var w = new float[q.K * q.N];
        for (int col = 0; col < q.N; col++)
            for (int row = 0; row < q.K; row++)
            {
                int block = col * q.KBlocks + row / q.BlockSize;
                w[row * q.N + col] = (float)((q.Codes[block * q.BlockSize + row % q.BlockSize] - q.ZeroPoints[block]) * (double)q.Scales[block]);
            }
        return w;
    }

    /// <summary>
    /// fp32: 1e-4 of the largest output. fp16: the kernel rounds dequantized weights, partial sums and the output to
    /// fp16, so each output gets 5e-4 of the sum of |x_k w_kn| (a few fp16 ulps) plus one rounding of the output.
    /// </summary>
    private static double[] Tolerances(float[] x, float[] w, int m, int k, int n, double[] expected, bool fp16)
    {
        var tol = new double[m * n];
        double maxY = QuantTestData.MaxAbs(expected);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double absSum = 0;
                for (int t = 0; t < k; t++) absSum += Math.Abs((double)x[i * k + t] * w[t * n + j]);
                tol[i * n + j] = fp16 ? 5e-4 * absSum + Math.Abs(expected[i * n + j]) / 1024 : 1e-4 * maxY;
            }
        return tol;
    }

    private static double WorstRatio(double[] expected, float[] actual, double[] tolerance, out double maxDiff)
    {
        double worst = 0;
        maxDiff = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double diff = Math.Abs(expected[i] - actual[i]);
            maxDiff = Math.Max(maxDiff, diff);
            worst = Math.Max(worst, diff / tolerance[i]);
        }
        return worst;
    }

    private float[] RunOrt(MatMulNBitsWeights packed, float[] x, int m, int k, int n, TensorProto.Types.DataType type)
    {
        string path = Path.Combine(_folder, $"mm-{Guid.NewGuid():N}.onnx");
        var proto = new ModelProto { IrVersion = 9, ProducerName = "onnxquant-tests", Graph = new GraphProto { Name = "matmulnbits" } };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = Nodes.MicrosoftDomain, Version = 1 });
        proto.Graph.Input.Add(ValueInfo("A", type, m, k));
        proto.Graph.Output.Add(ValueInfo("Y", type, m, n));
        using (var model = OnnxModel.FromProto(proto))
        {
            foreach (var t in packed.Initializers) model.Graph.SetInitializer(t);
            model.Graph.AddNode(MatMulNBitsPacker.BuildNode(packed, "A", "Y", "w/MatMulNBits"));
            ModelFile.Save(model, path);
        }

        using var options = new SessionOptions { IntraOpNumThreads = 1, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
        using var session = new InferenceSession(path, options);
        var shape = new[] { m, k };
        var input = type == TensorProto.Types.DataType.Float16
            ? NamedOnnxValue.CreateFromTensor("A", new DenseTensor<Float16>(x.Select(v => new Float16(BitConverter.HalfToUInt16Bits((Half)v))).ToArray(), shape))
            : NamedOnnxValue.CreateFromTensor("A", new DenseTensor<float>(x, shape));
        using var results = session.Run(new[] { input });
        var y = results.Single();
        return type == TensorProto.Types.DataType.Float16
            ? y.AsTensor<Float16>().Select(h => h.ToFloat()).ToArray()
            : y.AsTensor<float>().ToArray();
    }

    private static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType type, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }
}
