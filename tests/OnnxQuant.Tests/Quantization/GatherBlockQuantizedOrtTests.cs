using Microsoft.ML.OnnxRuntime;
using Onnx;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Quantization;
using OnnxQuant.Tests.Support;
using Xunit.Abstractions;

namespace OnnxQuant.Tests.Quantization;

/// <summary>
/// GatherBlockQuantized and the 8-bit MatMulNBits as OnnxQuant packs them, run by ONNX Runtime's CPU kernels, against a
/// plain C# reference that dequantizes straight from the codes, scales and zero points and gathers the rows.
/// </summary>
public sealed class GatherBlockQuantizedOrtTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    public static TheoryData<int, int, int, int, bool> Tables => new()
    {
        // rows (odd), width, block, bits, symmetric
        { 37, 40, 16, 4, false },   // a short last block and 3 blocks a row: zero points packed with a spare nibble
        { 37, 40, 16, 8, false },
        { 101, 96, 32, 4, true },
        { 53, 48, 16, 8, true },
        { 31, 64, 32, 4, false },
    };

    [Theory]
    [MemberData(nameof(Tables))]
    public void OrtGathersTheDequantizedRows(int rows, int width, int block, int bits, bool symmetric)
    {
        var table = QuantTestData.Weight(rows, width, seed: rows + width);
        var q = RowBlockQuantizer.Quantize(table, rows, width, bits, block, symmetric);
        var packed = RowBlockPacker.ForGather(q, "E");
        long[] ids = [0, rows - 1, 3, 3, rows / 2, -1, 1];

        var expected = Gathered(Reference(q), width, ids, rows);
        var actual = RunGather(packed, ids, width);
        double maxDiff = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        output.WriteLine($"{rows}x{width} {bits}-bit blocks of {block}: max |ORT - reference| = {maxDiff:g3}");
        Assert.True(maxDiff <= 1e-6 * expected.Max(Math.Abs), $"ORT differs from the reference by {maxDiff}");

        // Round-to-nearest: every element within half a step of the table (the steps are the blocks' scales).
        var dequantized = Reference(q);
        int perRow = (width + block - 1) / block;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < width; c++)
                Assert.True(Math.Abs(dequantized[r * width + c] - table[r * width + c]) <= q.Scales[r * perRow + c / block] * 0.5001f,
                    $"row {r} column {c}: {dequantized[r * width + c]} for {table[r * width + c]}");

        if (bits == 4)
        {
            // The same bytes with their nibbles swapped must be clearly wrong: the test sees a layout mistake.
            var swapped = packed.Data.RawBytes.ToArray().Select(b => (byte)((b >> 4) | (b << 4))).ToArray();
            var broken = packed with { Data = Tensor.FromUInt8s(packed.Data.Name, swapped, packed.Data.Shape) };
            double wrong = expected.Zip(RunGather(broken, ids, width), (e, a) => Math.Abs(e - a)).Max();
            Assert.True(wrong > 0.05 * expected.Max(Math.Abs), $"nibble-swapped codes differ by only {wrong}");
        }
    }

    [Theory]
    [InlineData(8, 40, 19, 16, false)]   // K = 40: the last of 3 blocks padded
    [InlineData(8, 64, 33, 32, true)]
    [InlineData(4, 40, 19, 16, false)]
    public void OrtMatMulNBitsComputesXTimesTheDequantizedRows(int bits, int k, int n, int block, bool symmetric)
    {
        const int M = 3;
        var rowsNK = QuantTestData.Weight(n, k, seed: n * k);
        var q = RowBlockQuantizer.Quantize(rowsNK, n, k, bits, block, symmetric);
        var packed = RowBlockPacker.ForMatMulNBits(q, "W");
        var x = QuantTestData.Activations(M, k, seed: 5);
        var w = Reference(q);
        var expected = new double[M * n];
        for (int i = 0; i < M; i++)
            for (int j = 0; j < n; j++)
                for (int t = 0; t < k; t++)
                    expected[i * n + j] += (double)x[i * k + t] * w[j * k + t];

        string path = _folder.File($"mm{bits}.onnx");
        using (var model = Model(TensorProto.Types.DataType.Float, ("A", [M, k]), ("Y", [M, n])))
        {
            foreach (var t in packed.Initializers) model.Graph.SetInitializer(t);
            model.Graph.AddNode(RowBlockPacker.MatMulNBitsNode(packed, "A", "Y", "W/MatMulNBits", 0));
            ModelFile.Save(model, path);
        }
        var y = OrtRunner.RunOnce(path, new Dictionary<string, OrtFeed> { ["A"] = OrtFeed.Float(x, M, k) }, GraphOptimizationLevel.ORT_DISABLE_ALL)["Y"].Values;
        double maxY = expected.Max(Math.Abs), maxDiff = expected.Zip(y, (e, a) => Math.Abs(e - a)).Max();
        output.WriteLine($"MatMulNBits bits={bits}: max |ORT - X·dequant(W)| = {maxDiff:g3} of max |y| {maxY:g3}");
        Assert.True(maxDiff <= 1e-4 * maxY, $"MatMulNBits bits={bits} differs by {maxDiff}");
    }

    /// <summary>dequant [rows, width] from the parts: (code - zero point) * scale, blocks counted per row.</summary>
    internal static float[] Reference(RowBlocks q)
    {
        int perRow = (q.Width + q.BlockSize - 1) / q.BlockSize;
        var result = new float[q.Rows * q.Width];
        for (int r = 0; r < q.Rows; r++)
            for (int c = 0; c < q.Width; c++)
            {
                int b = r * perRow + c / q.BlockSize;
                int zero = q.Symmetric ? 1 << (q.Bits - 1) : q.ZeroPoints[b];
                result[r * q.Width + c] = (q.Codes[r * q.Width + c] - zero) * q.Scales[b];
            }
        return result;
    }

    // Rows picked by ids (negative ids count from the end, as Gather's do).
    private static float[] Gathered(float[] table, int width, long[] ids, int rows) =>
        ids.SelectMany(i => table.AsSpan((int)((i + rows) % rows) * width, width).ToArray()).ToArray();

    private float[] RunGather(PackedRowBlocks packed, long[] ids, int width)
    {
        string path = _folder.File($"gather-{Guid.NewGuid():N}.onnx");
        using (var model = Model(TensorProto.Types.DataType.Int64, ("ids", [ids.Length]), ("Y", [ids.Length, width])))
        {
            foreach (var t in packed.Initializers) model.Graph.SetInitializer(t);
            model.Graph.AddNode(RowBlockPacker.GatherNode(packed, packed.Data.Name, "ids", "Y", "E/GatherBlockQuantized"));
            ModelFile.Save(model, path);
        }
        return OrtRunner.RunOnce(path, new Dictionary<string, OrtFeed> { ["ids"] = OrtFeed.Int64(ids, ids.Length) })["Y"].Values;
    }

    // One input (of inputType) and one float output, opsets 17 and com.microsoft 1.
    private static OnnxModel Model(TensorProto.Types.DataType inputType, (string Name, long[] Dims) input, (string Name, long[] Dims) result)
    {
        var proto = new ModelProto { IrVersion = 9, ProducerName = "onnxquant-tests", Graph = new GraphProto { Name = "tables" } };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = Nodes.MicrosoftDomain, Version = 1 });
        proto.Graph.Input.Add(ValueInfo(input.Name, inputType, input.Dims));
        proto.Graph.Output.Add(ValueInfo(result.Name, TensorProto.Types.DataType.Float, result.Dims));
        return OnnxModel.FromProto(proto);
    }

    internal static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType type, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }
}
