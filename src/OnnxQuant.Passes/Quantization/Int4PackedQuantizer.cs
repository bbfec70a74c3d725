using OnnxQuant.Numerics;

namespace OnnxQuant.Quantization;

/// <summary>A [K, N] weight the streamed 4-bit quantizer reads a tile at a time.</summary>
public interface IWeightTiles
{
    /// <summary>
    /// Rows [firstRow, firstRow + rowCount) x columns [firstColumn, firstColumn + columnCount) as float32 into
    /// <paramref name="destination"/>, row-major [rowCount, columnCount]. Called concurrently for disjoint tiles.
    /// </summary>
    void ReadTile(int firstRow, int rowCount, int firstColumn, int columnCount, Span<float> destination);

    /// <summary>Rows [firstRow, firstRow + rowCount) will not be read again (a mapped tensor drops their pages).</summary>
    void Done(int firstRow, int rowCount);

    /// <summary>
    /// Folds |w| of rows [firstRow, firstRow + rowCount), except <paramref name="skipRows"/>, into the per-column
    /// <paramref name="maxMagnitude"/> straight from the stored values, where the storage allows it without decoding;
    /// false (the default) leaves <paramref name="maxMagnitude"/> alone and the caller decodes tiles.
    /// </summary>
    bool TryFoldColumnMaxMagnitude(int firstRow, int rowCount, Span<float> maxMagnitude, IReadOnlySet<int>? skipRows) => false;
}

/// <summary>
/// A [K, N] weight quantized to 4 bits and already packed in MatMulNBits' layout: <see cref="Packed"/> [N, k_blocks,
/// block / 2] (code 2i in the low nibble), <see cref="Scales"/> and <see cref="ZeroPoints"/> [N, k_blocks] (unpacked),
/// and <see cref="RelativeError"/> = ||W - dequant(Q)|| / ||W||.
/// </summary>
public sealed record PackedInt4Weight(int K, int N, Int4QuantOptions Options, byte[] Packed, float[] Scales, byte[] ZeroPoints, double RelativeError)
{
    public int KBlocks => (K + Options.BlockSize - 1) / Options.BlockSize;
}

/// <summary>
/// <see cref="Int4BlockQuantizer.Quantize"/> for the rewrite of a large weight: each worker takes a band of block rows
/// and reads it through <see cref="IWeightTiles"/> one tile (a block row by 256 columns, 128 KB of fp32) at a time into
/// a cache-sized buffer — against the 180 MB a 7B MLP weight would take as fp32 — packs the codes two per byte as it
/// goes and measures the weight error in the same pass, so the weight is read once and never held whole as fp32. Codes, scales and zero points are bit-for-bit
/// those of <see cref="Int4BlockQuantizer.Quantize"/> followed by <see cref="MatMulNBitsPacker.PackCodes"/> (tested),
/// whatever the band size or the number of threads: every tile is computed the same way, and the error is summed per
/// tile and then in tile order.
/// </summary>
public static class Int4PackedQuantizer
{
    /// <summary>About this many floats of the weight make a band (16 MB as fp32): what one worker takes and releases at once.</summary>
    public const long DefaultBandFloats = 1 << 22;

    /// <param name="maxParallelism">Threads to use: -1 all cores, 1 serial (tests compare the two).</param>
    /// <param name="bandFloats">Floats per band (the rows a worker takes at once, released together); at least one block row.</param>
    public static PackedInt4Weight Quantize(IWeightTiles weight, int k, int n, Int4QuantOptions? options = null,
        int maxParallelism = -1, long bandFloats = DefaultBandFloats)
    {
        options ??= new Int4QuantOptions();
        if (k <= 0 || n <= 0 || (long)k * n > Array.MaxLength)
            throw new ArgumentException($"a [{k}, {n}] weight cannot be quantized as one 4-bit tensor");
        var plan = Int4BlockQuantizer.Plan.Create(k * n, k, n, options, default);
        int bs = options.BlockSize, kBlocks = plan.KBlocks, columnTiles = plan.ColumnTiles;
        long blocks = (long)n * kBlocks;
        var sink = new Int4BlockQuantizer.CodeSink(null, new float[blocks], new byte[blocks], new byte[blocks * bs / 2],
            new double[plan.TileCount], new double[plan.TileCount]);
        // Bands of whole block rows, one worker per band; within a band each tile is decoded into the worker's own
        // buffer (a block row by 256 columns: 128 KB, cache-sized) and rounded at once, so the fp32 values never go
        // out to memory. At least four bands per core, so the last ones do not leave a core idle.
        int cores = maxParallelism > 0 ? maxParallelism : Environment.ProcessorCount;
        int blocksPerBand = (int)Math.Clamp(bandFloats / ((long)bs * n), 1, Math.Max(1, kBlocks / (4 * cores)));
        int bands = (kBlocks + blocksPerBand - 1) / blocksPerBand;
        ParallelWork.Run(0, bands, maxParallelism, () => new float[plan.TileFloats], (b, buffer) =>
        {
            int g0 = b * blocksPerBand, g1 = Math.Min(kBlocks, g0 + blocksPerBand);
            unsafe
            {
                fixed (float* tilePointer = buffer)
                {
                    for (int tile = g0 * columnTiles; tile < g1 * columnTiles; tile++)
                    {
                        var (r0, c0, rows, columns) = plan.TileBounds(tile);
                        weight.ReadTile(r0, rows, c0, columns, buffer.AsSpan(0, rows * columns));
                        plan.RunBufferedTile(tile, (nint)tilePointer, columns, sink);
                    }
                }
            }
            int first = g0 * bs;
            weight.Done(first, Math.Min(k, g1 * bs) - first);
        });
        double error = 0, norm = 0;
        for (int t = 0; t < plan.TileCount; t++)
        {
            error += sink.Errors![t];
            norm += sink.Norms![t];
        }
        return new PackedInt4Weight(k, n, options, sink.Packed!, sink.Scales!, sink.ZeroPoints!, norm > 0 ? Math.Sqrt(error / norm) : 0);
    }

    /// <summary>Tiles of a weight already in memory ([K, N] row-major).</summary>
    public static IWeightTiles FromArray(float[] weight, int n) => new ArrayTiles(weight, n);

    private sealed class ArrayTiles(float[] weight, int n) : IWeightTiles
    {
        public void ReadTile(int firstRow, int rowCount, int firstColumn, int columnCount, Span<float> destination)
        {
            for (int r = 0; r < rowCount; r++)
                weight.AsSpan((firstRow + r) * n + firstColumn, columnCount).CopyTo(destination.Slice(r * columnCount, columnCount));
        }

        public void Done(int firstRow, int rowCount) { }
    }
}
