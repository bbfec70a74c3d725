using OnnxQuant.Quantization;

namespace OnnxQuant.Tests.Quantization;

public class Int8QuantizerTests
{
    private const double Slack = 1 + 1e-5;

    [Theory]
    [InlineData(64, 24, false)]
    [InlineData(77, 13, true)]
    [InlineData(300, 260, false)] // large enough to run rows in parallel
    public void PerChannelScalesAreAbsMaxOver127AndTheErrorIsAtMostHalfAScale(int k, int n, bool reducedRange)
    {
        var w = QuantTestData.Weight(k, n, seed: k + n);
        var q = Int8Quantizer.QuantizePerChannel(w, k, n, reducedRange);
        int max = reducedRange ? 63 : 127;
        Assert.Equal(n, q.Scales.Length);
        var back = q.Dequantize();
        for (int j = 0; j < n; j++)
        {
            float absMax = Enumerable.Range(0, k).Max(r => Math.Abs(w[r * n + j]));
            Assert.Equal(absMax / max, q.Scales[j]);
            // The column's largest magnitude uses the full code range.
            Assert.Equal(max, Enumerable.Range(0, k).Max(r => Math.Abs((int)q.Values[r * n + j])));
        }
        double relativeSum = 0;
        for (int i = 0; i < w.Length; i++)
        {
            float s = q.Scales[i % n];
            double err = Math.Abs(w[i] - back[i]);
            Assert.True(err <= s / 2 * Slack, $"element {i}: err {err}, scale {s}");
            relativeSum += err / s;
        }
        Assert.InRange(relativeSum / w.Length, 0.2, 0.3); // uniform rounding error: mean s/4
    }

    [Fact]
    public void PerTensorUsesOneScaleForTheWholeWeight()
    {
        int k = 50, n = 7;
        var w = QuantTestData.Weight(k, n, seed: 2);
        var q = Int8Quantizer.QuantizePerTensor(w, k, n);
        float absMax = w.Max(Math.Abs);
        Assert.Equal(new[] { absMax / 127 }, q.Scales);
        var back = q.Dequantize();
        for (int i = 0; i < w.Length; i++)
            Assert.True(Math.Abs(w[i] - back[i]) <= q.Scales[0] / 2 * Slack);
    }

    [Fact]
    public void ZeroColumnsGetTheMinimumScaleAndStayZero()
    {
        int k = 8, n = 3;
        var w = QuantTestData.Weight(k, n, seed: 6);
        for (int r = 0; r < k; r++) w[r * n + 1] = 0;
        var q = Int8Quantizer.QuantizePerChannel(w, k, n);
        Assert.Equal(ScaleStorage.MinScale, q.Scales[1]);
        var back = q.Dequantize();
        for (int r = 0; r < k; r++) Assert.Equal(0f, back[r * n + 1]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void FakeQuantizedWeightsEqualDequantizedWeights(bool reducedRange)
    {
        int k = 300, n = 250;
        var w = QuantTestData.Weight(k, n, seed: 12);
        var expected = Int8Quantizer.QuantizePerChannel(w, k, n, reducedRange).Dequantize();
        Int8Quantizer.FakeQuantizeWeightsPerChannel(w, k, n, reducedRange);
        Assert.Equal(expected, w);
    }

    [Fact]
    public void StaticActivationQuantizationSaturatesLikeQuantizeLinear()
    {
        float scale = Int8Quantizer.QuantizeActivationScale(2.54f); // 0.02
        Assert.Equal(2.54f / 127, scale);
        var x = new[] { 0f, 0.0101f, -0.0099f, 1.234f, 2.54f, 3.9f, -2.56f, -5f, 0.03f };
        var original = (float[])x.Clone();
        Int8Quantizer.FakeQuantizeActivationsPerTensor(x, scale);
        for (int i = 0; i < x.Length; i++)
        {
            // Saturation at -128 and 127, as QuantizeLinear to int8 does.
            float expected = Math.Clamp(MathF.Round(original[i] / scale), -128, 127) * scale;
            Assert.Equal(expected, x[i]);
        }
        Assert.Equal(127 * scale, x[5]);
        Assert.Equal(-128 * scale, x[7]);
    }

    [Fact]
    public void PerTokenQuantizationScalesEachRowByItsOwnAbsMax()
    {
        int rows = 3, cols = 40;
        var x = QuantTestData.Activations(rows, cols, seed: 4);
        for (int c = 0; c < cols; c++) x[2 * cols + c] *= 100; // a loud token must not affect the others
        var original = (float[])x.Clone();
        Int8Quantizer.FakeQuantizeActivationsPerToken(x, rows, cols);
        for (int r = 0; r < rows; r++)
        {
            float absMax = Enumerable.Range(0, cols).Max(c => Math.Abs(original[r * cols + c]));
            float s = absMax / 127;
            double maxErr = 0;
            for (int c = 0; c < cols; c++)
            {
                double err = Math.Abs(original[r * cols + c] - x[r * cols + c]);
                Assert.True(err <= s / 2 * Slack);
                maxErr = Math.Max(maxErr, err);
            }
            Assert.True(maxErr > s / 10, $"row {r}: values were not quantized (max error {maxErr}, scale {s})");
        }
    }

    [Fact]
    public void ActivationScaleIsNeverZeroAndRejectsNonsense()
    {
        Assert.Equal(ScaleStorage.MinScale, Int8Quantizer.QuantizeActivationScale(0f));
        Assert.Equal(1f, Int8Quantizer.QuantizeActivationScale(127f));
        Assert.Throws<ArgumentOutOfRangeException>(() => Int8Quantizer.QuantizeActivationScale(float.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => Int8Quantizer.FakeQuantizeActivationsPerTensor(new float[3], 0f));
        var w = new float[] { 1, float.PositiveInfinity, 2, 3 };
        var e = Assert.Throws<OnnxQuantException>(() => Int8Quantizer.QuantizePerChannel(w, 2, 2));
        Assert.Contains("channel 1", e.Message);
    }
}
