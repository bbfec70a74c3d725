using OnnxQuant.Quantization;

namespace OnnxQuant.Tests.Quantization;

/// <summary>The vectorised float -> int8 narrowing gives the codes a scalar round-and-clamp gives, in the vector body and the tail.</summary>
public class Int8NarrowingTests
{
    [Theory]
    [InlineData(64, 75, false)]  // 2 vectors of 32 and a tail of 11 per row
    [InlineData(40, 1000, true)]
    public void PerChannelCodesEqualScalarRounding(int k, int n, bool reducedRange)
    {
        var w = QuantTestData.Weight(k, n, seed: n);
        var q = Int8Quantizer.QuantizePerChannel(w, k, n, reducedRange);
        int max = Int8Quantizer.MaxCode(reducedRange);
        int nonZero = 0;
        for (int r = 0; r < k; r++)
            for (int j = 0; j < n; j++)
            {
                float expected = Math.Clamp(MathF.Round(w[r * n + j] * (1f / q.Scales[j])), -max, max);
                Assert.Equal((sbyte)expected, q.Values[r * n + j]);
                if (expected != 0) nonZero++;
            }
        Assert.True(nonZero > k * n / 2, $"only {nonZero} non-zero codes");
        Assert.Equal(max, q.Values.Max(v => Math.Abs((int)v)));
    }

    [Theory]
    [InlineData(33, 75)]
    [InlineData(8, 1000)]
    public void PerTensorCodesEqualScalarRounding(int k, int n)
    {
        var w = QuantTestData.Weight(k, n, seed: n + 1);
        var q = Int8Quantizer.QuantizePerTensor(w, k, n);
        float inverse = 1f / Assert.Single(q.Scales);
        for (int i = 0; i < w.Length; i++)
            Assert.Equal((sbyte)Math.Clamp(MathF.Round(w[i] * inverse), -127f, 127f), q.Values[i]);
        Assert.Equal(127, q.Values.Max(v => Math.Abs((int)v)));
    }

    [Theory]
    [InlineData(300, 600, false, false)] // several 128-row and 256-column tiles, partial ones at both edges
    [InlineData(77, 1000, true, true)]
    [InlineData(5, 3, false, true)]
    public void TheStreamedQuantizerEqualsTheInMemoryOneWithFloatRowsAsZero(int k, int n, bool reducedRange, bool withZeroRows)
    {
        var w = QuantTestData.Weight(k, n, seed: k + n);
        int[] zeroRows = withZeroRows ? [0, k / 2, k - 1] : [];
        var cleared = w.ToArray();
        foreach (int r in zeroRows) cleared.AsSpan(r * n, n).Clear();
        var expected = Int8Quantizer.QuantizePerChannel(cleared, k, n, reducedRange);

        var streamed = Int8Quantizer.QuantizePerChannel(Int4PackedQuantizer.FromArray(w, n), k, n, reducedRange, zeroRows);
        Assert.Equal(expected.Scales, streamed.Scales);
        Assert.Equal(expected.Values, streamed.Values);
        Assert.All(zeroRows, r => Assert.All(streamed.Values.AsSpan(r * n, n).ToArray(), v => Assert.Equal(0, v)));
    }
}
