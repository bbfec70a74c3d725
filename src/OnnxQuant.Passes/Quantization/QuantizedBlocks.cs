using Onnx;
using OnnxQuant.Numerics;

namespace OnnxQuant.Quantization;

/// <summary>How a 4-bit block maps floats to codes 0..15. Dequantization is always <c>(q - zp) * scale</c>.</summary>
public enum Int4Scheme
{
    /// <summary>
    /// Per block <c>scale = (max - min) / 15</c>, <c>zp = clamp(round(-min / scale), 0, 15)</c>, with the range widened
    /// to include 0 (so zero is exact, all-positive blocks are not clipped, and zero padding never widens a range).
    /// </summary>
    Asymmetric,

    /// <summary>
    /// Implicit zero point 8. <c>scale = -e / 8</c> where <c>e</c> is the block's value of largest magnitude (ONNX
    /// Runtime's own blockwise quantizer convention): <c>e</c> lands exactly on code 0 (-8) and the scale may be
    /// negative. It uses all 16 codes: on Gaussian, Laplace and Student-t weights this gave about 22% lower MSE than
    /// <c>absmax / 7</c> (numpy check, block sizes 32 and 128), at the cost of clipping values of the opposite sign
    /// beyond 7.5 |scale| (error there at most |scale| instead of |scale| / 2). When |max| == |min| the positive value
    /// is the extreme (ORT takes the negative one; both give the same error).
    /// </summary>
    Symmetric,
}

/// <summary>Options of <see cref="Int4BlockQuantizer"/>.</summary>
public sealed record Int4QuantOptions
{
    /// <summary>Elements of K per block: a power of two in 16..256 (ONNX Runtime's kernels are tested there).</summary>
    public int BlockSize { get; init; } = 128;

    public Int4Scheme Scheme { get; init; } = Int4Scheme.Asymmetric;

    /// <summary>
    /// The type the scales will be stored in (MatMulNBits stores them in the activation type). Scales are rounded to it
    /// before the codes are computed, so fp16 storage does not break the error bound.
    /// </summary>
    public TensorProto.Types.DataType ScaleType { get; init; } = TensorProto.Types.DataType.Float;

    public static bool IsValidBlockSize(int blockSize) =>
        blockSize is >= 16 and <= 256 && (blockSize & (blockSize - 1)) == 0;

    /// <summary>The block sizes a linear's 4-bit rewrite takes from a user (`--group-size`, a recipe's w4-rewrite blockSize).</summary>
    public static IReadOnlyList<int> LinearBlockSizes { get; } = [32, 64, 128, 256];

    /// <summary>"32, 64, 128 or 256", as a refusal lists them.</summary>
    public static string LinearBlockSizeWords => $"{string.Join(", ", LinearBlockSizes.SkipLast(1))} or {LinearBlockSizes[^1]}";

    internal void Validate()
    {
        if (!IsValidBlockSize(BlockSize))
            throw new ArgumentOutOfRangeException(nameof(BlockSize), BlockSize, "the 4-bit block size must be a power of two from 16 to 256");
        if (!Enum.IsDefined(Scheme))
            throw new ArgumentOutOfRangeException(nameof(Scheme), Scheme, "unknown 4-bit scheme");
        ScaleStorage.CheckSupported(ScaleType);
    }
}

/// <summary>
/// A [K, N] weight quantized to 4-bit (or, for mixed precision, 8-bit: <see cref="Bits"/>) codes in blocks of
/// <see cref="BlockSize"/> along K, one column at a time. The block grid is the same at both widths: only the code range
/// (0..2^bits - 1) and the symmetric zero point (2^(bits - 1)) change.
/// Layouts follow MatMulNBits (before nibble packing): codes [N, KBlocks, BlockSize] (one byte per code, 0..15; the
/// zero-padded tail of the last block holds the zero point, i.e. the value 0), scales and zero points [N, KBlocks].
/// For <see cref="Int4Scheme.Symmetric"/> every zero point is 8 (128 at 8 bits).
/// </summary>
public sealed class QuantizedBlocks
{
    public QuantizedBlocks(int k, int n, Int4QuantOptions options, byte[] codes, float[] scales, byte[] zeroPoints, int bits = 4)
    {
        options.Validate();
        if (bits is not (4 or 8))
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "block quantization writes 4 or 8 bits");
        Bits = bits;
        if (k <= 0 || n <= 0)
            throw new ArgumentOutOfRangeException(nameof(k), $"weight shape [{k}, {n}] must be positive");
        K = k;
        N = n;
        Options = options;
        KBlocks = (k + options.BlockSize - 1) / options.BlockSize;
        long blocks = (long)n * KBlocks;
        if (codes.LongLength != blocks * options.BlockSize)
            throw new ArgumentException($"codes hold {codes.LongLength} values; [N={n}, k_blocks={KBlocks}, block={options.BlockSize}] needs {blocks * options.BlockSize}");
        if (scales.LongLength != blocks || zeroPoints.LongLength != blocks)
            throw new ArgumentException($"scales ({scales.LongLength}) and zero points ({zeroPoints.LongLength}) must hold N * k_blocks = {blocks} values");
        if (bits == 4 && codes.AsSpan().IndexOfAnyInRange((byte)16, byte.MaxValue) is var badCode and >= 0)
            throw new ArgumentException($"code {codes[badCode]} at {badCode} is not a 4-bit value");
        if (bits == 4 && zeroPoints.AsSpan().IndexOfAnyInRange((byte)16, byte.MaxValue) is var badZero and >= 0)
            throw new ArgumentException($"zero point {zeroPoints[badZero]} at {badZero} is not a 4-bit value");
        Codes = codes;
        Scales = scales;
        ZeroPoints = zeroPoints;
    }

    /// <summary>Bits per code: 4 (two codes per byte once packed) or 8 (one per byte).</summary>
    public int Bits { get; }

    public int K { get; }

    public int N { get; }

    public int KBlocks { get; }

    public int BlockSize => Options.BlockSize;

    public Int4QuantOptions Options { get; }

    /// <summary>[N, KBlocks, BlockSize], values 0..15.</summary>
    public byte[] Codes { get; }

    /// <summary>[N, KBlocks], already representable in <see cref="Int4QuantOptions.ScaleType"/>.</summary>
    public float[] Scales { get; }

    /// <summary>[N, KBlocks], values 0..15 (all 8 for the symmetric scheme).</summary>
    public byte[] ZeroPoints { get; }

    /// <summary>The weight back in [K, N] row-major float: <c>(q - zp) * scale</c>, padding dropped.</summary>
    public float[] Dequantize()
    {
        var result = new float[(long)K * N];
        int k = K, n = N, kBlocks = KBlocks, bs = BlockSize;
        var codes = Codes;
        var scales = Scales;
        var zps = ZeroPoints;
        // One output row per iteration: contiguous writes, and rows are independent.
        ParallelWork.For(k, (long)k * n, row =>
        {
            int b = row / bs, i = row % bs;
            var dst = result.AsSpan(row * n, n);
            for (int col = 0; col < n; col++)
            {
                int block = col * kBlocks + b;
                dst[col] = (codes[block * bs + i] - zps[block]) * scales[block];
            }
        });
        return result;
    }
}

