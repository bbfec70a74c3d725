using FsCheck.Xunit;
using OnnxQuant.Quantization;

namespace OnnxQuant.Tests.Quantization;

/// <summary>Properties over random shapes, block sizes, schemes and clip ratios (FsCheck draws the seeds).</summary>
public class QuantizerPropertyTests
{
    private static readonly int[] BlockSizes = { 16, 32, 64, 128, 256 };

    [Property(MaxTest = 60)]
    public bool FourBitErrorStaysWithinTheBoundForAnyShape(byte kDraw, byte nDraw, byte blockDraw, bool symmetric, int seed)
    {
        int k = 1 + kDraw, n = 1 + nDraw % 40, bs = BlockSizes[blockDraw % BlockSizes.Length];
        var scheme = symmetric ? Int4Scheme.Symmetric : Int4Scheme.Asymmetric;
        var w = QuantTestData.Weight(k, n, seed);
        var q = Int4BlockQuantizer.Quantize(w, k, n, new Int4QuantOptions { BlockSize = bs, Scheme = scheme });
        var back = q.Dequantize();
        for (int r = 0; r < k; r++)
            for (int j = 0; j < n; j++)
            {
                float s = q.Scales[j * q.KBlocks + r / bs];
                bool beyondCodes = symmetric && w[r * n + j] / s > 7.5;
                double bound = (beyondCodes ? Math.Abs(s) : Math.Abs(s) / 2) * (1 + 1e-4);
                if (Math.Abs(w[r * n + j] - back[r * n + j]) > bound) return false;
            }
        return true;
    }

    [Property(MaxTest = 40)]
    public bool FakeQuantizeWithClipRatiosEqualsDequantizedCodes(byte kDraw, byte nDraw, byte ratioDraw, bool symmetric, int seed)
    {
        int k = 1 + kDraw, n = 1 + nDraw % 30, bs = 32;
        var options = new Int4QuantOptions { BlockSize = bs, Scheme = symmetric ? Int4Scheme.Symmetric : Int4Scheme.Asymmetric };
        var w = QuantTestData.Weight(k, n, seed);
        var ratios = Enumerable.Range(0, n).Select(j => 0.5f + (ratioDraw + j) % 11 / 20f).ToArray();
        var expected = Int4BlockQuantizer.Quantize(w, k, n, options, ratios).Dequantize();
        Int4BlockQuantizer.FakeQuantizeInPlace(w, k, n, options, ratios);
        return expected.AsSpan().SequenceEqual(w);
    }

    [Property(MaxTest = 60)]
    public bool PackedCodesUnpackToTheSameCodes(byte[] raw)
    {
        var codes = raw.Select(b => (byte)(b & 0xF)).Take(raw.Length / 2 * 2).ToArray();
        var packed = MatMulNBitsPacker.PackCodes(codes);
        for (int i = 0; i < codes.Length; i++)
            if (((packed[i / 2] >> (4 * (i % 2))) & 0xF) != codes[i]) return false;
        return packed.Length == codes.Length / 2;
    }

    [Property(MaxTest = 60)]
    public bool Int8PerChannelErrorIsAtMostHalfAScale(byte kDraw, byte nDraw, bool reducedRange, int seed)
    {
        int k = 1 + kDraw % 100, n = 1 + nDraw % 50;
        var w = QuantTestData.Weight(k, n, seed);
        var q = Int8Quantizer.QuantizePerChannel(w, k, n, reducedRange);
        var back = q.Dequantize();
        for (int i = 0; i < w.Length; i++)
            if (Math.Abs(w[i] - back[i]) > q.Scales[i % n] / 2 * (1 + 1e-5)) return false;
        return q.Values.All(v => Math.Abs((int)v) <= Int8Quantizer.MaxCode(reducedRange));
    }
}
