using OnnxQuant.Numerics;

namespace OnnxQuant.Awq;

/// <summary>
/// <c>G_g = X_gᵀ X_g</c> for every block g of K (columns [g * block, (g + 1) * block) of the rows X): the squared output
/// error of a weight change Δ_g confined to block g is <c>Σ_n Δ_g[:, n]ᵀ G_g Δ_g[:, n]</c>, whatever the row count.
/// </summary>
public sealed class BlockGrams
{
    private readonly float[][] _blocks;

    private BlockGrams(int k, int blockSize, float[][] blocks)
    {
        K = k;
        BlockSize = blockSize;
        _blocks = blocks;
    }

    public int K { get; }

    public int BlockSize { get; }

    /// <summary>Block g's Gram matrix, row-major [b, b] with b = min(BlockSize, K - g * BlockSize).</summary>
    public float[] Block(int g) => _blocks[g];

    public static BlockGrams Create(MatrixView rows, int blockSize)
    {
        if (blockSize <= 0)
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "the block size must be positive");
        int k = rows.Cols, r = rows.Rows, kBlocks = (k + blockSize - 1) / blockSize;
        // Xᵀ once, so each block's left operand is a contiguous row range.
        var transposed = new float[(long)k * r];
        for (int i = 0; i < r; i++)
            for (int j = 0; j < k; j++)
                transposed[(long)j * r + i] = rows.Data[rows.Offset + i * rows.Stride + j];
        var xt = MatrixView.Of(transposed, k, r);
        var blocks = new float[kBlocks][];
        for (int g = 0; g < kBlocks; g++)
        {
            int b = Math.Min(blockSize, k - g * blockSize);
            blocks[g] = MatrixMultiply.Multiply(xt.RowRange(g * blockSize, b), rows.Columns(g * blockSize, b));
        }
        return new BlockGrams(k, blockSize, blocks);
    }
}
