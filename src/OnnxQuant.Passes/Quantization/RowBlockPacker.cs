using Onnx;
using OnnxQuant.IR;

namespace OnnxQuant.Quantization;

/// <summary>The initializers of one quantized table: codes, scales and (asymmetric) zero points, with the attributes both ops read.</summary>
public sealed record PackedRowBlocks(int Rows, int Width, int Bits, int BlockSize, Tensor Data, Tensor Scales, Tensor? ZeroPoints)
{
    public IEnumerable<Tensor> Initializers => new[] { Data, Scales, ZeroPoints }.OfType<Tensor>();

    public long Bytes => Initializers.Sum(t => t.ByteLength);
}

/// <summary>
/// Lays <see cref="RowBlocks"/> out for ONNX Runtime's com.microsoft ops
/// (docs/architecture.md, "Quantized embeddings and LM head"). Codes pack 8 / bits per byte, element 2i of a row in
/// the low nibble at 4 bits; zero points are [rows, blocks] bytes at 8 bits and two per byte (low nibble first, each row starting on a byte) at 4 bits; scales
/// are [rows, blocks] in the table's float type. GatherBlockQuantized reads the codes as [rows, width * bits / 8];
/// MatMulNBits reads them as B [N, blocks, block * bits / 8], a row padded to whole blocks. When the width is a
/// multiple of the block size the two are the same bytes, which is what lets a tied head and embedding share them.
/// </summary>
public static class RowBlockPacker
{
    public const string GatherOp = "GatherBlockQuantized";

    /// <summary>Tensors for GatherBlockQuantized; the width times the bits must fill whole bytes.</summary>
    public static PackedRowBlocks ForGather(RowBlocks q, string baseName)
    {
        if ((long)q.Width * q.Bits % 8 != 0)
            throw new ArgumentException($"a {q.Width}-wide row of {q.Bits}-bit codes does not fill whole bytes");
        var data = Tensor.FromUInt8s($"{baseName}_Q{q.Bits}", PackCodes(q.Codes, q.Bits), new long[] { q.Rows, (long)q.Width * q.Bits / 8 });
        return new PackedRowBlocks(q.Rows, q.Width, q.Bits, q.BlockSize, data, Scales(q, baseName), ZeroPoints(q, baseName));
    }

    /// <summary>Tensors for MatMulNBits with N = rows and K = width (the logical weight transposed).</summary>
    public static PackedRowBlocks ForMatMulNBits(RowBlocks q, string baseName)
    {
        int perRow = q.BlocksPerRow, padded = perRow * q.BlockSize;
        byte[] codes = q.Codes;
        if (padded != q.Width)
        {
            // The padding multiplies nothing (K ends first); fill it with the block's zero point so it dequantizes to 0.
            codes = new byte[(long)q.Rows * padded];
            for (int row = 0; row < q.Rows; row++)
            {
                var target = codes.AsSpan(row * padded, padded);
                target.Fill(q.ZeroPoints[row * perRow + perRow - 1]);
                q.Codes.AsSpan(row * q.Width, q.Width).CopyTo(target);
            }
        }
        var b = Tensor.FromUInt8s($"{baseName}_Q{q.Bits}", PackCodes(codes, q.Bits), new long[] { q.Rows, perRow, q.BlockSize * q.Bits / 8 });
        return new PackedRowBlocks(q.Rows, q.Width, q.Bits, q.BlockSize, b, Scales(q, baseName), ZeroPoints(q, baseName));
    }

    private static Tensor Scales(RowBlocks q, string baseName) =>
        Tensor.FromFloats($"{baseName}_scales", q.Scales, new long[] { q.Rows, q.BlocksPerRow }, q.ScaleType);

    private static Tensor? ZeroPoints(RowBlocks q, string baseName)
    {
        if (q.Symmetric)
            return null;
        return q.Bits == 8
            ? Tensor.FromUInt8s($"{baseName}_zero_points", q.ZeroPoints, new long[] { q.Rows, q.BlocksPerRow })
            : Tensor.FromUInt8s($"{baseName}_zero_points", MatMulNBitsPacker.PackZeroPoints(q.ZeroPoints, q.Rows, q.BlocksPerRow),
                new long[] { q.Rows, (q.BlocksPerRow + 1) / 2 });
    }

    private static byte[] PackCodes(byte[] codes, int bits) => bits == 8 ? codes : MatMulNBitsPacker.PackCodes(codes);

    /// <summary>
    /// GatherBlockQuantized(data, indices, scales[, zero_points]) with every attribute written out: the CUDA kernel
    /// requires bits and defaults quantize_axis to 0 where the CPU kernel defaults it to 1.
    /// </summary>
    public static NodeProto GatherNode(PackedRowBlocks packed, string data, string indices, string output, string name)
    {
        var inputs = new List<string> { data, indices, packed.Scales.Name };
        if (packed.ZeroPoints is not null)
            inputs.Add(packed.ZeroPoints.Name);
        return Nodes.Create(GatherOp, inputs, new[] { output }, name, Nodes.MicrosoftDomain)
            .With("bits", packed.Bits)
            .With("block_size", packed.BlockSize)
            .With("gather_axis", 0L)
            .With("quantize_axis", 1L);
    }

    /// <summary>MatMulNBits(A, B, scales[, zero_points]) at the table's bits.</summary>
    public static NodeProto MatMulNBitsNode(PackedRowBlocks packed, string input, string output, string name, int accuracyLevel)
    {
        var inputs = new List<string> { input, packed.Data.Name, packed.Scales.Name };
        if (packed.ZeroPoints is not null)
            inputs.Add(packed.ZeroPoints.Name);
        return Nodes.Create(MatMulNBitsPacker.OpType, inputs, new[] { output }, name, Nodes.MicrosoftDomain)
            .With("K", packed.Width)
            .With("N", packed.Rows)
            .With("bits", packed.Bits)
            .With("block_size", packed.BlockSize)
            .With("accuracy_level", accuracyLevel);
    }
}
