using Onnx;
using OnnxQuant.IR;
using OnnxQuant.Quantization;

namespace OnnxQuant.Tests.Quantization;

public class MatMulNBitsPackerTests
{
    /// <summary>K = 40, N = 2, blocks of 16: k_blocks = 3 (odd), the last block padded from 8 rows.</summary>
    private static QuantizedBlocks HandExample(Int4Scheme scheme, TensorProto.Types.DataType scaleType = TensorProto.Types.DataType.Float)
    {
        var codes = new byte[2 * 3 * 16];
        for (int c = 0; c < 2; c++)
            for (int b = 0; b < 3; b++)
                for (int i = 0; i < 16; i++)
                    codes[(c * 3 + b) * 16 + i] = (byte)((i + b + c * 5) % 16);
        var scales = new[] { 0.5f, 0.25f, 2f, -1f, 0.125f, 4f };
        var zeroPoints = scheme == Int4Scheme.Symmetric ? Enumerable.Repeat((byte)8, 6).ToArray() : new byte[] { 1, 2, 3, 4, 5, 6 };
        return new QuantizedBlocks(40, 2, new Int4QuantOptions { BlockSize = 16, Scheme = scheme, ScaleType = scaleType }, codes, scales, zeroPoints);
    }

    [Fact]
    public void CodesArePackedLowNibbleFirstPerBlock()
    {
        var packed = MatMulNBitsPacker.Pack(HandExample(Int4Scheme.Asymmetric), "w", TensorProto.Types.DataType.Float);
        Assert.Equal(new long[] { 2, 3, 8 }, packed.B.Shape);
        Assert.Equal(TensorProto.Types.DataType.Uint8, packed.B.DataType);
        var b = packed.B.RawBytes.ToArray();
        // Column 0, block 0 holds codes 0, 1, ..., 15: element 2i low nibble, 2i+1 high nibble.
        Assert.Equal(new byte[] { 0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE }, b[..8]);
        // Column 1, block 2 (the last 8 bytes) holds codes 7, 8, ..., 15, 0, ..., 6.
        Assert.Equal(new byte[] { 0x87, 0xA9, 0xCB, 0xED, 0x0F, 0x21, 0x43, 0x65 }, b[^8..]);
    }

    [Fact]
    public void PackCodesMatchesTheNibbleDefinitionAtEveryLength()
    {
        // Lengths around the vector width exercise both the vector loop and the scalar tail.
        var rng = new Random(5);
        foreach (int length in Enumerable.Range(0, 140).Select(i => 2 * i).Append(4098))
        {
            var codes = Enumerable.Range(0, length).Select(_ => (byte)rng.Next(16)).ToArray();
            var packed = MatMulNBitsPacker.PackCodes(codes);
            Assert.Equal(length / 2, packed.Length);
            for (int i = 0; i < packed.Length; i++)
                Assert.Equal((byte)(codes[2 * i] + 16 * codes[2 * i + 1]), packed[i]);
        }
    }

    [Fact]
    public void ZeroPointsArePackedPerColumnWithAnOddBlockCount()
    {
        var packed = MatMulNBitsPacker.Pack(HandExample(Int4Scheme.Asymmetric), "w", TensorProto.Types.DataType.Float);
        Assert.NotNull(packed.ZeroPoints);
        Assert.Equal(new long[] { 2, 2 }, packed.ZeroPoints!.Shape);
        // Column 0: zero points 1, 2, 3 -> 0x21, 0x03; column 1 starts on a new byte: 4, 5, 6 -> 0x54, 0x06.
        Assert.Equal(new byte[] { 0x21, 0x03, 0x54, 0x06 }, packed.ZeroPoints.RawBytes.ToArray());
        Assert.Equal("w_zero_points", packed.ZeroPoints.Name);
    }

    [Fact]
    public void ScalesAreStoredInTheActivationTypeAsNByKBlocks()
    {
        var packed = MatMulNBitsPacker.Pack(HandExample(Int4Scheme.Asymmetric, TensorProto.Types.DataType.Float16), "w", TensorProto.Types.DataType.Float16);
        Assert.Equal(TensorProto.Types.DataType.Float16, packed.Scales.DataType);
        Assert.Equal(new long[] { 2, 3 }, packed.Scales.Shape);
        // fp16 bit patterns of 0.5, 0.25, 2, -1, 0.125, 4, little-endian.
        Assert.Equal(new byte[] { 0x00, 0x38, 0x00, 0x34, 0x00, 0x40, 0x00, 0xBC, 0x00, 0x30, 0x00, 0x44 }, packed.Scales.RawBytes.ToArray());
    }

    [Fact]
    public void SymmetricWeightsHaveNoZeroPointInput()
    {
        var packed = MatMulNBitsPacker.Pack(HandExample(Int4Scheme.Symmetric), "layer/q", TensorProto.Types.DataType.Float);
        Assert.Null(packed.ZeroPoints);
        var node = MatMulNBitsPacker.BuildNode(packed, "x", "y", "layer/q/MatMulNBits");
        Assert.Equal(new[] { "x", "layer/q_Q4", "layer/q_scales" }, node.Input);
        Assert.Equal(2, packed.Initializers.Count());
    }

    [Fact]
    public void NodeCarriesTheAttributesAndTheOptionalInputsInTheirSlots()
    {
        var bias = new[] { 0.5f, -1f };
        var asym = MatMulNBitsPacker.Pack(HandExample(Int4Scheme.Asymmetric), "w", TensorProto.Types.DataType.Float, bias, accuracyLevel: 4);
        var node = MatMulNBitsPacker.BuildNode(asym, "a", "y", "n1");
        Assert.Equal(new[] { "a", "w_Q4", "w_scales", "w_zero_points", "", "w_bias" }, node.Input);
        Assert.Equal(Nodes.MicrosoftDomain, node.Domain);
        Assert.Equal("MatMulNBits", node.OpType);
        Assert.Equal(40, node.GetInt("K", -1));
        Assert.Equal(2, node.GetInt("N", -1));
        Assert.Equal(4, node.GetInt("bits", -1));
        Assert.Equal(16, node.GetInt("block_size", -1));
        Assert.Equal(4, node.GetInt("accuracy_level", -1));
        Assert.Equal(bias, asym.Bias!.ToFloats());

        var sym = MatMulNBitsPacker.Pack(HandExample(Int4Scheme.Symmetric), "w", TensorProto.Types.DataType.Float, bias);
        Assert.Equal(new[] { "a", "w_Q4", "w_scales", "", "", "w_bias" }, MatMulNBitsPacker.BuildNode(sym, "a", "y", "n2").Input);

        var plain = MatMulNBitsPacker.Pack(HandExample(Int4Scheme.Asymmetric), "w", TensorProto.Types.DataType.Float);
        Assert.Equal(new[] { "a", "w_Q4", "w_scales", "w_zero_points" }, MatMulNBitsPacker.BuildNode(plain, "a", "y", "n3").Input);
    }

    [Fact]
    public void MismatchedScaleTypeAndBadArgumentsAreRefused()
    {
        var fp32 = HandExample(Int4Scheme.Asymmetric);
        var e = Assert.Throws<ArgumentException>(() => MatMulNBitsPacker.Pack(fp32, "w", TensorProto.Types.DataType.Float16));
        Assert.Contains("ScaleType", e.Message);
        Assert.Throws<ArgumentException>(() => MatMulNBitsPacker.Pack(fp32, "w", TensorProto.Types.DataType.Float, new float[3]));
        Assert.Throws<ArgumentOutOfRangeException>(() => MatMulNBitsPacker.Pack(fp32, "w", TensorProto.Types.DataType.Float, default, 7));
        Assert.Throws<ArgumentException>(() => MatMulNBitsPacker.PackCodes(new byte[3]));
        Assert.Throws<ArgumentException>(() => new QuantizedBlocks(40, 2, fp32.Options, new byte[96], new float[5], new byte[6]));
    }
}
