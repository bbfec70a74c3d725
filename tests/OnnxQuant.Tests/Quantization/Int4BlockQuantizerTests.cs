using Onnx;
using OnnxQuant.Quantization;

namespace OnnxQuant.Tests.Quantization;

public class Int4BlockQuantizerTests
{
    private const double Slack = 1 + 1e-4; // float rounding of w / s

    public static TheoryData<int, int, int, Int4Scheme> Shapes => new()
    {
        { 200, 24, 64, Int4Scheme.Asymmetric },
        { 200, 24, 64, Int4Scheme.Symmetric },
        { 77, 19, 32, Int4Scheme.Asymmetric },
        { 77, 19, 32, Int4Scheme.Symmetric },
        { 256, 9, 128, Int4Scheme.Asymmetric },
        { 300, 7, 128, Int4Scheme.Symmetric },
        { 96, 300, 32, Int4Scheme.Asymmetric }, // more than one 256-column tile
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void RoundTripErrorIsWithinTheRtnBound(int k, int n, int blockSize, Int4Scheme scheme)
    {
        var w = QuantTestData.Weight(k, n, seed: k * 31 + n);
        var q = Int4BlockQuantizer.Quantize(w, k, n, new Int4QuantOptions { BlockSize = blockSize, Scheme = scheme });
        var back = q.Dequantize();

        Assert.Equal((k + blockSize - 1) / blockSize, q.KBlocks);
        double relativeSum = 0;
        int clipped = 0;
        for (int r = 0; r < k; r++)
            for (int j = 0; j < n; j++)
            {
                float s = q.Scales[j * q.KBlocks + r / blockSize];
                double err = Math.Abs(w[r * n + j] - back[r * n + j]);
                // Symmetric: values of the opposite sign to the block's extreme beyond 7.5|s| clip to code 15.
                bool beyondCodes = scheme == Int4Scheme.Symmetric && w[r * n + j] / s > 7.5;
                double bound = (beyondCodes ? Math.Abs(s) : Math.Abs(s) / 2) * Slack;
                Assert.True(err <= bound, $"[{r},{j}] w={w[r * n + j]} back={back[r * n + j]} err={err} bound={bound}");
                relativeSum += err / Math.Abs(s);
                if (beyondCodes) clipped++;
            }
        // Rounding errors are spread over [0, s/2]: mean about s/4. A quantizer that did not quantize would give ~0.
        double meanRelative = relativeSum / (k * n);
        Assert.InRange(meanRelative, 0.2, 0.3);
        Assert.True(clipped < k * n / 50, $"{clipped} clipped values");
    }

    [Theory]
    [InlineData(Int4Scheme.Asymmetric)]
    [InlineData(Int4Scheme.Symmetric)]
    public void ScalesAndZeroPointsFollowTheDocumentedFormulas(Int4Scheme scheme)
    {
        int k = 77, n = 5, bs = 32;
        var w = QuantTestData.Weight(k, n, seed: 5);
        var q = Int4BlockQuantizer.Quantize(w, k, n, new Int4QuantOptions { BlockSize = bs, Scheme = scheme });
        for (int j = 0; j < n; j++)
            for (int b = 0; b < q.KBlocks; b++)
            {
                var values = Enumerable.Range(b * bs, Math.Min(bs, k - b * bs)).Select(r => w[r * n + j]).ToArray();
                float min = values.Min(), max = values.Max();
                int meta = j * q.KBlocks + b;
                if (scheme == Int4Scheme.Asymmetric)
                {
                    float expectedScale = (Math.Max(max, 0f) - Math.Min(min, 0f)) / 15f;
                    Assert.Equal(expectedScale, q.Scales[meta]);
                    Assert.Equal(Math.Clamp(Math.Round(-Math.Min(min, 0f) / expectedScale), 0, 15), q.ZeroPoints[meta]);
                }
                else
                {
                    float extreme = Math.Abs(max) >= Math.Abs(min) ? max : min; // ties: the positive value
                    Assert.Equal(-extreme / 8f, q.Scales[meta]);
                    Assert.Equal(8, q.ZeroPoints[meta]);
                    // The extreme lands exactly on code 0.
                    int at = Array.IndexOf(values, extreme);
                    Assert.Equal(0, q.Codes[meta * bs + at]);
                }
            }
    }

    [Theory]
    [InlineData(Int4Scheme.Asymmetric)]
    [InlineData(Int4Scheme.Symmetric)]
    public void PaddedTailOfTheLastBlockEncodesZeroAndDoesNotWidenTheRange(Int4Scheme scheme)
    {
        // K = 77 with blocks of 32: the last block has 13 real rows, all in [1, 2] (no zero among them).
        int k = 77, n = 3, bs = 32;
        var w = QuantTestData.Weight(k, n, seed: 9);
        for (int r = 64; r < k; r++)
            for (int j = 0; j < n; j++)
                w[r * n + j] = 1f + (r * 7 + j) % 13 / 13f;
        var q = Int4BlockQuantizer.Quantize(w, k, n, new Int4QuantOptions { BlockSize = bs, Scheme = scheme });
        for (int j = 0; j < n; j++)
        {
            int meta = j * q.KBlocks + 2;
            float max = Enumerable.Range(64, 13).Max(r => w[r * n + j]);
            // Asymmetric always includes 0 in the range; symmetric uses the extreme. Padding zeros change neither.
            Assert.Equal(scheme == Int4Scheme.Asymmetric ? max / 15f : -max / 8f, q.Scales[meta]);
            for (int i = 13; i < bs; i++)
                Assert.Equal(q.ZeroPoints[meta], q.Codes[meta * bs + i]);
        }
        Assert.Equal(k * n, q.Dequantize().Length);
    }

    [Theory]
    [InlineData(Int4Scheme.Asymmetric, 0.37f)]
    [InlineData(Int4Scheme.Asymmetric, -2.5f)]
    [InlineData(Int4Scheme.Asymmetric, 0f)]
    [InlineData(Int4Scheme.Symmetric, 0.37f)]
    [InlineData(Int4Scheme.Symmetric, -2.5f)]
    [InlineData(Int4Scheme.Symmetric, 0f)]
    public void ZeroWidthBlocksAreRepresentedExactly(Int4Scheme scheme, float value)
    {
        int k = 64, n = 4;
        var w = Enumerable.Repeat(value, k * n).ToArray();
        var q = Int4BlockQuantizer.Quantize(w, k, n, new Int4QuantOptions { BlockSize = 32, Scheme = scheme });
        Assert.All(q.Scales, s => Assert.True(float.IsFinite(s) && Math.Abs(s) >= ScaleStorage.MinScale));
        Assert.All(q.Dequantize(), v => Assert.Equal(value, v, Math.Abs(value) * 1e-6f));
    }

    [Theory]
    [InlineData(Int4Scheme.Asymmetric)]
    [InlineData(Int4Scheme.Symmetric)]
    public void FakeQuantizeEqualsDequantizeOfQuantize(Int4Scheme scheme)
    {
        int k = 200, n = 300; // 60k elements, two column tiles
        var w = QuantTestData.Weight(k, n, seed: 3);
        var options = new Int4QuantOptions { BlockSize = 64, Scheme = scheme };
        var expected = Int4BlockQuantizer.Quantize(w, k, n, options).Dequantize();

        var into = new float[w.Length];
        Int4BlockQuantizer.FakeQuantize(w, into, k, n, options);
        Assert.Equal(expected, into);

        var inPlace = (float[])w.Clone();
        Int4BlockQuantizer.FakeQuantizeInPlace(inPlace, k, n, options);
        Assert.Equal(expected, inPlace);
    }

    [Fact]
    public void LargeWeightsGiveTheSameBytesOnEveryRun()
    {
        int k = 512, n = 520; // above the parallel threshold: tiles run on several threads
        var w = QuantTestData.Weight(k, n, seed: 11);
        var a = Int4BlockQuantizer.Quantize(w, k, n);
        var b = Int4BlockQuantizer.Quantize(w, k, n);
        Assert.Equal(a.Codes, b.Codes);
        Assert.Equal(a.Scales, b.Scales);
        Assert.Equal(a.ZeroPoints, b.ZeroPoints);
        Assert.Contains(a.Codes, c => c == 15);
        Assert.Contains(a.Codes, c => c == 0);
    }

    [Fact]
    public void PerColumnClipRatioShrinksTheRangeAndClampsTheTails()
    {
        int k = 128, n = 6, bs = 64;
        var w = QuantTestData.Weight(k, n, seed: 21);
        var options = new Int4QuantOptions { BlockSize = bs };
        var plain = Int4BlockQuantizer.Quantize(w, k, n, options);
        var ratios = new float[] { 1f, 0.5f, 1f, 0.8f, 1f, 1f };
        var clipped = Int4BlockQuantizer.Quantize(w, k, n, options, ratios);
        var back = clipped.Dequantize();
        for (int j = 0; j < n; j++)
            for (int b = 0; b < plain.KBlocks; b++)
            {
                int meta = j * plain.KBlocks + b;
                Assert.Equal(plain.Scales[meta] * ratios[j], clipped.Scales[meta], plain.Scales[meta] * 1e-5f);
                float s = clipped.Scales[meta], zp = clipped.ZeroPoints[meta];
                float lowest = -zp * s, highest = (15 - zp) * s;
                for (int r = b * bs; r < (b + 1) * bs; r++)
                {
                    float v = w[r * n + j];
                    float expected = Math.Clamp(v, lowest, highest);
                    Assert.True(Math.Abs(expected - back[r * n + j]) <= s / 2 * Slack, $"[{r},{j}]");
                }
            }
    }

    [Fact]
    public void PerBlockClipRatiosAffectOnlyTheirBlock()
    {
        int k = 96, n = 3, bs = 32;
        var w = QuantTestData.Weight(k, n, seed: 4);
        var plain = Int4BlockQuantizer.Quantize(w, k, n, new Int4QuantOptions { BlockSize = bs, Scheme = Int4Scheme.Symmetric });
        var ratios = Enumerable.Repeat(1f, n * plain.KBlocks).ToArray();
        ratios[1 * plain.KBlocks + 2] = 0.75f; // column 1, block 2
        var clipped = Int4BlockQuantizer.Quantize(w, k, n, plain.Options, ratios);
        for (int meta = 0; meta < ratios.Length; meta++)
            Assert.Equal(plain.Scales[meta] * ratios[meta], clipped.Scales[meta], Math.Abs(plain.Scales[meta]) * 1e-6f);
    }

    [Theory]
    [InlineData(TensorProto.Types.DataType.Float16)]
    [InlineData(TensorProto.Types.DataType.Bfloat16)]
    public void HalfScalesAreRoundedUpSoTheBoundStillHolds(TensorProto.Types.DataType scaleType)
    {
        int k = 200, n = 24, bs = 64;
        var w = QuantTestData.Weight(k, n, seed: 8);
        var exact = Int4BlockQuantizer.Quantize(w, k, n, new Int4QuantOptions { BlockSize = bs });
        var q = Int4BlockQuantizer.Quantize(w, k, n, new Int4QuantOptions { BlockSize = bs, ScaleType = scaleType });
        var stored = IR.FloatCodec.Encode(q.Scales, scaleType);
        var decoded = new float[q.Scales.Length];
        IR.FloatCodec.Decode(stored, scaleType, decoded);
        Assert.Equal(q.Scales, decoded); // storing them loses nothing
        for (int i = 0; i < q.Scales.Length; i++)
            Assert.True(q.Scales[i] >= exact.Scales[i], $"scale {i}: {q.Scales[i]} < {exact.Scales[i]}");
        var back = q.Dequantize();
        for (int r = 0; r < k; r++)
            for (int j = 0; j < n; j++)
                Assert.True(Math.Abs(w[r * n + j] - back[r * n + j]) <= q.Scales[j * q.KBlocks + r / bs] / 2 * Slack);
    }

    [Fact]
    public void BadInputIsRefusedClearly()
    {
        var w = QuantTestData.Weight(64, 4, seed: 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => Int4BlockQuantizer.Quantize(w, 64, 4, new Int4QuantOptions { BlockSize = 100 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => Int4BlockQuantizer.Quantize(w, 64, 4, new Int4QuantOptions { BlockSize = 512 }));
        Assert.Throws<ArgumentException>(() => Int4BlockQuantizer.Quantize(w, 64, 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => Int4BlockQuantizer.Quantize(w, 64, 4, null, new float[] { 1, 0, 1, 1 }));
        Assert.Throws<ArgumentException>(() => Int4BlockQuantizer.Quantize(w, 64, 4, null, new float[] { 1, 1, 1 }));
        w[10 * 4 + 2] = float.NaN;
        var e = Assert.Throws<OnnxQuantException>(() => Int4BlockQuantizer.Quantize(w, 64, 4));
        Assert.Contains("column 2", e.Message);
        Assert.Equal(ExitCode.Unsupported, e.ExitCode);
    }

    [Fact]
    public void TooLargeScaleForFloat16IsRefused()
    {
        var w = new float[] { 2e6f, -1e6f, 0f, 1f }; // [4, 1]: scale 2e5 > fp16's 65504
        var e = Assert.Throws<OnnxQuantException>(() =>
            Int4BlockQuantizer.Quantize(w, 4, 1, new Int4QuantOptions { BlockSize = 16, ScaleType = TensorProto.Types.DataType.Float16 }));
        Assert.Contains("Float16", e.Message);
    }
}
