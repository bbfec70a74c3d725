using System.Numerics;
using System.Runtime.InteropServices;
using Onnx;
using OnnxQuant.IR;

namespace OnnxQuant.Quantization;

/// <summary>The initializers and attributes of one com.microsoft MatMulNBits node (4 bits).</summary>
public sealed record MatMulNBitsWeights(int K, int N, int BlockSize, int AccuracyLevel, Tensor B, Tensor Scales, Tensor? ZeroPoints, Tensor? Bias)
{
    public const int Bits = 4;

    /// <summary>The tensors to add to the graph as initializers.</summary>
    public IEnumerable<Tensor> Initializers =>
        new[] { B, Scales, ZeroPoints, Bias }.OfType<Tensor>();
}

/// <summary>
/// Emits MatMulNBits inputs from <see cref="QuantizedBlocks"/>, in ONNX Runtime's layout:
/// B uint8 [N, k_blocks, block_size / 2] with element 2i in the low nibble of byte i and 2i+1 in the high nibble;
/// scales [N, k_blocks] in the activation type; zero points uint8 [N, ceil(k_blocks / 2)], low nibble first, each
/// column starting on a byte boundary, or absent for the symmetric scheme (the kernel's default zero point is 8).
/// </summary>
public static class MatMulNBitsPacker
{
    public const string OpType = "MatMulNBits";

    /// <summary>
    /// Packs <paramref name="quantized"/> into tensors named after <paramref name="baseName"/>. The scales must have been
    /// computed for <paramref name="activationType"/> (<see cref="Int4QuantOptions.ScaleType"/>), so storing them in that
    /// type is exact. <paramref name="bias"/> (N values, optional) becomes input 5 in the activation type.
    /// </summary>
    public static MatMulNBitsWeights Pack(QuantizedBlocks quantized, string baseName, TensorProto.Types.DataType activationType,
        ReadOnlySpan<float> bias = default, int accuracyLevel = 0)
    {
        ScaleStorage.CheckSupported(activationType);
        if (quantized.Options.ScaleType != activationType)
            throw new ArgumentException($"the scales were computed for {quantized.Options.ScaleType} but MatMulNBits stores them as the activation type {activationType}; quantize with ScaleType = {activationType}");
        if (accuracyLevel is < 0 or > 4)
            throw new ArgumentOutOfRangeException(nameof(accuracyLevel), accuracyLevel, "MatMulNBits accuracy_level is 0..4");
        if (bias.Length != 0 && bias.Length != quantized.N)
            throw new ArgumentException($"bias has {bias.Length} values; the weight has N = {quantized.N} columns");

        int n = quantized.N, kBlocks = quantized.KBlocks;
        var b = Tensor.FromUInt8s($"{baseName}_Q4", PackCodes(quantized.Codes), new long[] { n, kBlocks, quantized.BlockSize / 2 });
        var scales = Tensor.FromFloats($"{baseName}_scales", quantized.Scales, new long[] { n, kBlocks }, activationType);
        Tensor? zeroPoints = quantized.Options.Scheme == Int4Scheme.Symmetric
            ? null
            : Tensor.FromUInt8s($"{baseName}_zero_points", PackZeroPoints(quantized.ZeroPoints, n, kBlocks), new long[] { n, (kBlocks + 1) / 2 });
        Tensor? biasTensor = bias.Length == 0 ? null : Tensor.FromFloats($"{baseName}_bias", bias, new long[] { n }, activationType);
        return new MatMulNBitsWeights(quantized.K, n, quantized.BlockSize, accuracyLevel, b, scales, zeroPoints, biasTensor);
    }

    /// <summary>
    /// The MatMulNBits tensors of a weight <see cref="Int4PackedQuantizer"/> already packed (its arrays become the
    /// tensors' bytes, not copied).
    /// </summary>
    public static MatMulNBitsWeights Pack(PackedInt4Weight weight, string baseName, TensorProto.Types.DataType activationType,
        ReadOnlySpan<float> bias = default, int accuracyLevel = 0)
    {
        ScaleStorage.CheckSupported(activationType);
        if (weight.Options.ScaleType != activationType)
            throw new ArgumentException($"the scales were computed for {weight.Options.ScaleType} but MatMulNBits stores them as the activation type {activationType}; quantize with ScaleType = {activationType}");
        if (accuracyLevel is < 0 or > 4)
            throw new ArgumentOutOfRangeException(nameof(accuracyLevel), accuracyLevel, "MatMulNBits accuracy_level is 0..4");
        if (bias.Length != 0 && bias.Length != weight.N)
            throw new ArgumentException($"bias has {bias.Length} values; the weight has N = {weight.N} columns");
        int n = weight.N, kBlocks = weight.KBlocks;
        var b = Tensor.FromBytes($"{baseName}_Q4", TensorProto.Types.DataType.Uint8, new long[] { n, kBlocks, weight.Options.BlockSize / 2 }, weight.Packed);
        var scales = Tensor.FromFloats($"{baseName}_scales", weight.Scales, new long[] { n, kBlocks }, activationType);
        Tensor? zeroPoints = weight.Options.Scheme == Int4Scheme.Symmetric
            ? null
            : Tensor.FromBytes($"{baseName}_zero_points", TensorProto.Types.DataType.Uint8, new long[] { n, (kBlocks + 1) / 2 }, PackZeroPoints(weight.ZeroPoints, n, kBlocks));
        Tensor? biasTensor = bias.Length == 0 ? null : Tensor.FromFloats($"{baseName}_bias", bias, new long[] { n }, activationType);
        return new MatMulNBitsWeights(weight.K, n, weight.Options.BlockSize, accuracyLevel, b, scales, zeroPoints, biasTensor);
    }

    /// <summary>Two 4-bit codes per byte: code 2i in the low nibble of byte i, code 2i+1 in the high nibble.</summary>
    public static byte[] PackCodes(ReadOnlySpan<byte> codes)
    {
        if (codes.Length % 2 != 0)
            throw new ArgumentException($"{codes.Length} codes cannot be packed two per byte");
        var packed = new byte[codes.Length / 2];
        PackPairs(codes, packed);
        return packed;
    }

    internal static void PackPairs(ReadOnlySpan<byte> codes, Span<byte> packed)
    {
        // Little-endian: bytes 2i, 2i+1 of the codes are the low and high byte of ushort i; fold the high one's nibble up.
        var pairs = MemoryMarshal.Cast<byte, ushort>(codes);
        int i = 0;
        if (Vector.IsHardwareAccelerated && BitConverter.IsLittleEndian)
        {
            var mask = new Vector<ushort>(0xF);
            for (; i <= pairs.Length - 2 * Vector<ushort>.Count; i += 2 * Vector<ushort>.Count)
            {
                var a = new Vector<ushort>(pairs[i..]);
                var b = new Vector<ushort>(pairs[(i + Vector<ushort>.Count)..]);
                Vector.Narrow((a & mask) | ((a >> 8) << 4), (b & mask) | ((b >> 8) << 4)).CopyTo(packed[i..]);
            }
        }
        for (; i < pairs.Length; i++)
            packed[i] = (byte)((codes[2 * i] & 0xF) | (codes[2 * i + 1] << 4));
    }

    /// <summary>
    /// Zero points [N, k_blocks] packed to [N, ceil(k_blocks / 2)]: block 2i of a column in the low nibble, 2i+1 in the
    /// high nibble; with an odd k_blocks the last byte of each column has an unused (zero) high nibble.
    /// </summary>
    public static byte[] PackZeroPoints(ReadOnlySpan<byte> zeroPoints, int n, int kBlocks)
    {
        if (zeroPoints.Length != (long)n * kBlocks)
            throw new ArgumentException($"{zeroPoints.Length} zero points for [N={n}, k_blocks={kBlocks}]");
        int perColumn = (kBlocks + 1) / 2;
        var packed = new byte[n * perColumn];
        for (int col = 0; col < n; col++)
        {
            var src = zeroPoints.Slice(col * kBlocks, kBlocks);
            for (int block = 0; block < kBlocks; block++)
                packed[col * perColumn + block / 2] |= (byte)((src[block] & 0xF) << (4 * (block % 2)));
        }
        return packed;
    }

    /// <summary>
    /// The MatMulNBits node: inputs A, B, scales, zero_points (or "" when absent and a bias follows), g_idx "", bias;
    /// trailing absent inputs are left out. The caller adds <see cref="MatMulNBitsWeights.Initializers"/> to the graph
    /// and imports the com.microsoft domain.
    /// </summary>
    public static NodeProto BuildNode(MatMulNBitsWeights weights, string input, string output, string name)
    {
        var inputs = new List<string> { input, weights.B.Name, weights.Scales.Name };
        if (weights.ZeroPoints is not null || weights.Bias is not null)
            inputs.Add(weights.ZeroPoints?.Name ?? "");
        if (weights.Bias is not null)
        {
            inputs.Add(""); // g_idx: deprecated, always empty
            inputs.Add(weights.Bias.Name);
        }
        return Nodes.Create(OpType, inputs, new[] { output }, name, Nodes.MicrosoftDomain)
            .With("K", weights.K)
            .With("N", weights.N)
            .With("bits", MatMulNBitsWeights.Bits)
            .With("block_size", weights.BlockSize)
            .With("accuracy_level", weights.AccuracyLevel);
    }
}
