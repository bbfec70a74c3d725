using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Numerics;
using OnnxQuant.Tests.ModelIO;
using OnnxQuant.Tests.Quantization;

namespace OnnxQuant.Tests.Smoothing;

/// <summary>
/// SmoothQuant's alpha search reads its column sample and the weight side of its balance a band of rows at a time;
/// both equal what the whole fp32 weight gives, across bands (the last one partial) and the fp16 decode.
/// </summary>
public class WeightBandReadTests
{
    // 2100 columns: bands of 499 rows, so 1200 rows are three bands, the last of 202.
    private const int K = 1200, N = 2100;

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(11)]
    public void A_column_sample_read_by_bands_equals_the_sample_of_the_whole_weight(int stride)
    {
        using var model = Fp16MatMul(out var linear);
        var whole = linear.ReadWeightKN(model.Graph);

        var banded = LinearWeightTiles.SampleColumns(model.Graph, linear, stride, out int columns);

        var expected = ColumnSample.Take(whole, K, N, stride, out int expectedColumns);
        Assert.Equal(expectedColumns, columns);
        Assert.Equal((N + stride - 1) / stride, columns);
        Assert.Equal(expected, banded);
    }

    [Fact]
    public void Row_maxima_read_by_bands_equal_those_of_the_whole_weight_and_keep_larger_ones()
    {
        using var model = Fp16MatMul(out var linear);
        var whole = linear.ReadWeightKN(model.Graph);
        var rowMax = new float[K];
        rowMax[7] = 1e6f; // larger than any weight: kept

        LinearWeightTiles.FoldRowAbsMax(model.Graph, linear, rowMax);

        for (int r = 0; r < K; r++)
        {
            float expected = r == 7 ? 1e6f : whole.AsSpan(r * N, N).ToArray().Max(MathF.Abs);
            Assert.Equal(expected, rowMax[r]);
        }
        Assert.True(rowMax.Skip(1000).All(m => m > 0f), "the last, partial band was not read");
    }

    private static OnnxModel Fp16MatMul(out LinearNode linear)
    {
        var values = QuantTestData.Weight(K, N, seed: 21);
        values[N * 1100 + 5] = -9f; // a row maximum that is negative, in the last band
        var model = OnnxModel.FromProto(TinyModels.MatMul(TensorProtoWriter.Inline(Tensor.FromFloats("W", values, [K, N], TensorProto.Types.DataType.Float16)), K, N));
        linear = Assert.Single(LinearNode.FindAll(model.Graph));
        return model;
    }
}
