using OnnxQuant.Numerics;

namespace OnnxQuant.Tests.Numerics;

/// <summary>The fp16 decoder equals (float)Half on every input, in each vector body and in the scalar tail.</summary>
public class HalfWideningTests
{
    [Theory]
    [InlineData("dispatch")]
    [InlineData("512")]
    [InlineData("256")]
    public void Every_half_widens_to_the_same_float_bits_as_the_runtime(string body)
    {
        var all = Enumerable.Range(0, 1 << 16).Select(i => (ushort)i).ToArray();
        var result = new float[all.Length];
        // Each vector body on its own (both run in software where the hardware lacks them), and the dispatch.
        int done = body switch
        {
            "512" => HalfWidening.Widen512(all, result),
            "256" => HalfWidening.Widen256(all, result),
            _ => ToSingle(all, result),
        };
        Assert.Equal(all.Length, done);
        int wrong = 0, first = -1;
        for (int i = 0; i < all.Length; i++)
            if (BitConverter.SingleToUInt32Bits(result[i]) != BitConverter.SingleToUInt32Bits((float)BitConverter.UInt16BitsToHalf(all[i])))
            {
                wrong++;
                if (first < 0) first = i;
            }
        Assert.True(wrong == 0, $"{wrong} halves differ, the first 0x{first:X4}");
    }

    private static int ToSingle(ushort[] half, float[] result)
    {
        HalfWidening.ToSingle(half, result);
        return half.Length;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(33)]
    [InlineData(1000)]
    public void Lengths_that_end_in_a_scalar_tail_decode_every_element(int length)
    {
        var random = new Random(length);
        var half = Enumerable.Range(0, length).Select(_ => (ushort)random.Next(0, 1 << 16)).ToArray();
        var result = new float[length + 3];
        result.AsSpan().Fill(42f);
        HalfWidening.ToSingle(half, result);
        for (int i = 0; i < length; i++)
            Assert.Equal(BitConverter.SingleToUInt32Bits((float)BitConverter.UInt16BitsToHalf(half[i])), BitConverter.SingleToUInt32Bits(result[i]));
        Assert.Equal([42f, 42f, 42f], result[length..]);
    }
}
