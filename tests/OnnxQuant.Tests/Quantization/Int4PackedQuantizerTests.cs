using Onnx;
using OnnxQuant.Quantization;

namespace OnnxQuant.Tests.Quantization;

/// <summary>The band-by-band packed quantizer the W4 rewrite uses equals the whole-weight quantizer, bit for bit.</summary>
public class Int4PackedQuantizerTests
{
    public static TheoryData<int, int, int, Int4Scheme, long> Cases => new()
    {
        { 300, 600, 128, Int4Scheme.Asymmetric, 1 },        // a short last block, 3 column tiles (one partial), one block per band
        { 300, 600, 128, Int4Scheme.Symmetric, 1 },
        { 256, 300, 32, Int4Scheme.Asymmetric, 32 * 300 * 3 }, // three blocks per band, last band shorter
        { 77, 19, 16, Int4Scheme.Asymmetric, 1L << 22 },     // the whole weight in one band
        { 130, 263, 64, Int4Scheme.Asymmetric, 1 },          // 8 x 8 transposes, then a last tile of 7 columns done byte by byte
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void PackedBandsEqualWholeWeightQuantizeThenPack(int k, int n, int blockSize, Int4Scheme scheme, long bandFloats)
    {
        var w = QuantTestData.Weight(k, n, seed: k + 7 * n);
        var options = new Int4QuantOptions { BlockSize = blockSize, Scheme = scheme, ScaleType = TensorProto.Types.DataType.Float16 };
        var whole = Int4BlockQuantizer.Quantize(w, k, n, options);
        var packed = Int4PackedQuantizer.Quantize(Int4PackedQuantizer.FromArray(w, n), k, n, options, bandFloats: bandFloats);

        Assert.Equal(MatMulNBitsPacker.PackCodes(whole.Codes), packed.Packed);
        Assert.Equal(whole.Scales, packed.Scales);
        Assert.Equal(whole.ZeroPoints, packed.ZeroPoints);
        // The error measured while packing is the error of the dequantized weight, computed here in double.
        var back = whole.Dequantize();
        double error = 0, norm = 0;
        for (int i = 0; i < w.Length; i++)
        {
            error += ((double)w[i] - back[i]) * ((double)w[i] - back[i]);
            norm += (double)w[i] * w[i];
        }
        Assert.True(packed.RelativeError > 0.01, $"error {packed.RelativeError}");
        Assert.Equal(Math.Sqrt(error / norm), packed.RelativeError, 1e-6);
    }

    [Fact]
    public void ParallelOutputEqualsSerialOutputByteForByte()
    {
        int k = 512, n = 1000;
        var w = QuantTestData.Weight(k, n, seed: 5);
        var options = new Int4QuantOptions { BlockSize = 64 };
        var serial = Int4PackedQuantizer.Quantize(Int4PackedQuantizer.FromArray(w, n), k, n, options, maxParallelism: 1, bandFloats: 64 * 1000 * 2);
        for (int run = 0; run < 3; run++)
        {
            var parallel = Int4PackedQuantizer.Quantize(Int4PackedQuantizer.FromArray(w, n), k, n, options, maxParallelism: -1, bandFloats: 64 * 1000 * 2);
            Assert.Equal(serial.Packed, parallel.Packed);
            Assert.Equal(serial.Scales, parallel.Scales);
            Assert.Equal(serial.ZeroPoints, parallel.ZeroPoints);
            Assert.Equal(BitConverter.DoubleToInt64Bits(serial.RelativeError), BitConverter.DoubleToInt64Bits(parallel.RelativeError));
        }
    }

    [Fact]
    public void ReadsEveryElementOnceAndReleasesEveryRowOnceABandAtATime()
    {
        int k = 1000, n = 300, blockSize = 128;
        var w = QuantTestData.Weight(k, n, seed: 9);
        var source = new CountingTiles(w, k, n);
        long band = 2L * blockSize * n;
        var packed = Int4PackedQuantizer.Quantize(source, k, n, new Int4QuantOptions { BlockSize = blockSize }, bandFloats: band);

        Assert.All(source.Reads, c => Assert.Equal(1, c));
        Assert.All(source.Releases, c => Assert.Equal(1, c));
        // A tile never spans more than one block row, and a release never more than a band.
        Assert.True(source.LargestTile <= blockSize, $"a tile of {source.LargestTile} rows");
        Assert.True(source.LargestRelease * (long)n <= band, $"a release of {source.LargestRelease} rows exceeds the band of {band / n} rows");
        Assert.Equal(MatMulNBitsPacker.PackCodes(Int4BlockQuantizer.Quantize(w, k, n, new Int4QuantOptions { BlockSize = blockSize }).Codes), packed.Packed);
    }

    private sealed class CountingTiles(float[] w, int k, int n) : IWeightTiles
    {
        private readonly object _gate = new();

        public int[] Reads { get; } = new int[k * n];

        public int[] Releases { get; } = new int[k];

        public int LargestTile { get; private set; }

        public int LargestRelease { get; private set; }

        public void ReadTile(int firstRow, int rowCount, int firstColumn, int columnCount, Span<float> destination)
        {
            lock (_gate)
            {
                for (int r = firstRow; r < firstRow + rowCount; r++)
                    for (int c = firstColumn; c < firstColumn + columnCount; c++) Reads[r * n + c]++;
                LargestTile = Math.Max(LargestTile, rowCount);
            }
            for (int r = 0; r < rowCount; r++)
                w.AsSpan((firstRow + r) * n + firstColumn, columnCount).CopyTo(destination.Slice(r * columnCount, columnCount));
        }

        public void Done(int firstRow, int rowCount)
        {
            lock (_gate)
            {
                for (int r = firstRow; r < firstRow + rowCount; r++) Releases[r]++;
                LargestRelease = Math.Max(LargestRelease, rowCount);
            }
        }
    }
}
