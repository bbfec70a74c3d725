using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using OnnxQuant.Tests.Analysis;
using Xunit.Abstractions;
using Tensor = OnnxQuant.IR.Tensor;

namespace OnnxQuant.Tests.W8A8;

/// <summary>
/// ORT's CPU MatMulInteger (s8 x s8) against the exact integer product on this machine. Without VNNI (docs/architecture.md, "ONNX Runtime on the CPU") the
/// kernel's 16-bit pair sums saturate with full-range weights; 7-bit weights never do. The int8 format's weight range
/// is chosen from this measurement.
/// </summary>
public class MatMulIntegerCpuTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(63)]
    [InlineData(127)]
    public void MatMulIntegerMatchesTheExactIntegerProduct(int weightMax)
    {
        const int M = 16, K = 256, N = 32;
        var random = new Random(weightMax);
        // Worst case for pair sums: activations at the extremes, weights at the extremes with equal signs in pairs.
        var a = new sbyte[M * K];
        var b = new sbyte[K * N];
        for (int i = 0; i < a.Length; i++) a[i] = (sbyte)(random.Next(2) == 0 ? -128 : 127);
        for (int i = 0; i < b.Length; i++) b[i] = (sbyte)(random.Next(2) == 0 ? -weightMax : weightMax);
        var sketch = new GraphSketch();
        sketch.Add(Tensor.FromInt8s("b", b, [K, N]));
        sketch.Node("MatMulInteger", ["a", "b"], ["y"], "mmi");
        var model = sketch.ToModel(13);
        model.Graph.Input.Add(GraphSketch.Value("a", TensorProto.Types.DataType.Int8, M, K));
        model.Graph.Output.Add(GraphSketch.Value("y", TensorProto.Types.DataType.Int32, M, N));
        using var session = new InferenceSession(model.ToByteArray());
        using var input = OrtValue.CreateTensorValueFromMemory(a, [M, K]);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, ["a"], [input], ["y"]);
        var y = results[0].GetTensorDataAsSpan<int>().ToArray();
        long worst = 0;
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++)
            {
                long exact = 0;
                for (int k = 0; k < K; k++) exact += a[m * K + k] * b[k * N + n];
                worst = Math.Max(worst, Math.Abs(exact - y[m * N + n]));
            }
        output.WriteLine($"weights ±{weightMax}: largest deviation from the exact int32 product = {worst}");
        if (weightMax <= 63)
            Assert.Equal(0, worst);
        else if (System.Runtime.Intrinsics.X86.AvxVnni.IsSupported)
            Assert.Equal(0, worst); // VNNI sums u8*s8 products into 32 bits directly: full range is exact here
    }
}
