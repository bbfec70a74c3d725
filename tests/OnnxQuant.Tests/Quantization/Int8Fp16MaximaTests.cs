using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Numerics;
using OnnxQuant.Quantization;
using OnnxQuant.Tests.ModelIO;

namespace OnnxQuant.Tests.Quantization;

/// <summary>
/// The W8 rewrite's column maxima of an fp16 weight, taken from the stored bits without decoding, give the scales and
/// codes of the decoded in-memory path; a NaN is still named.
/// </summary>
public class Int8Fp16MaximaTests
{
    [Theory]
    [InlineData(300, 70, false)]  // 70 columns: two 32-lane vectors and a tail of 6 per row
    [InlineData(129, 1000, true)]
    public void Scales_and_codes_from_stored_fp16_bits_equal_the_decoded_path(int k, int n, bool withZeroRows)
    {
        var values = QuantTestData.Weight(k, n, seed: k * n);
        values[5] = -3.5e-6f; // a subnormal half
        values[n + 1] = -values.Max(MathF.Abs) * 1.5f; // the column maximum is negative
        using var model = Fp16MatMul(values, k, n);
        var linear = Assert.Single(LinearNode.FindAll(model.Graph));
        var decoded = model.Graph.GetInitializer("W")!.ToFloats();
        int[] zeroRows = withZeroRows ? [0, 1, k / 2, k - 1] : [];
        var cleared = decoded.ToArray();
        foreach (int r in zeroRows) cleared.AsSpan(r * n, n).Clear();

        var tiles = LinearWeightTiles.Of(model.Graph, linear);
        var probe = new float[n];
        Assert.True(tiles.TryFoldColumnMaxMagnitude(0, k, probe, null)); // the bits path is the one taken
        var expected = Int8Quantizer.QuantizePerChannel(cleared, k, n);
        var streamed = Int8Quantizer.QuantizePerChannel(tiles, k, n, false, zeroRows);

        Assert.Equal(expected.Scales, streamed.Scales);
        Assert.Equal(expected.Values, streamed.Values);
    }

    [Fact]
    public void A_NaN_in_the_stored_bits_is_named_as_the_decoded_read_names_it()
    {
        var values = QuantTestData.Weight(64, 40, seed: 3);
        values[17 * 40 + 9] = float.NaN;
        using var model = Fp16MatMul(values, 64, 40);
        var linear = Assert.Single(LinearNode.FindAll(model.Graph));

        var fromBits = Assert.Throws<OnnxQuantException>(() => Int8Quantizer.QuantizePerChannel(LinearWeightTiles.Of(model.Graph, linear), 64, 40));
        var fromRead = Assert.Throws<OnnxQuantException>(() => linear.ReadWeightKN(model.Graph));
        Assert.Equal(fromRead.Message, fromBits.Message);
    }

    [Fact]
    public void Magnitude_bits_fold_like_float_magnitudes_over_every_half()
    {
        var all = Enumerable.Range(0, 1 << 16).Select(i => (ushort)i).Where(h => (h & 0x7C00) != 0x7C00).ToArray(); // finite
        var maxima = new ushort[all.Length];
        HalfWidening.FoldMagnitudeBits(all, maxima);
        for (int i = 0; i < all.Length; i++)
            Assert.Equal(MathF.Abs((float)BitConverter.UInt16BitsToHalf(all[i])), (float)BitConverter.UInt16BitsToHalf(maxima[i]));
        // Folding a second row keeps the larger magnitude per position, whatever the signs.
        var second = all.Reverse().ToArray();
        HalfWidening.FoldMagnitudeBits(second, maxima);
        for (int i = 0; i < all.Length; i++)
            Assert.Equal(Math.Max(MathF.Abs((float)BitConverter.UInt16BitsToHalf(all[i])), MathF.Abs((float)BitConverter.UInt16BitsToHalf(second[i]))),
                (float)BitConverter.UInt16BitsToHalf(maxima[i]));
    }

    private static OnnxModel Fp16MatMul(float[] values, int k, int n) =>
        OnnxModel.FromProto(TinyModels.MatMul(TensorProtoWriter.Inline(Tensor.FromFloats("W", values, [k, n], TensorProto.Types.DataType.Float16)), k, n));
}
