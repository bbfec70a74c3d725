using OnnxQuant.Numerics;

namespace OnnxQuant.Quantization;

/// <summary>Fills <paramref name="destination"/> with rows [firstRow, firstRow + rowCount) of a [K, N] weight as float32; called concurrently for disjoint rows.</summary>
public delegate void WeightRowReader(int firstRow, int rowCount, Span<float> destination);

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
/// <see cref="Int4BlockQuantizer.Quantize"/> for the rewrite of a large weight: reads the weight a band of block rows at
/// a time through a <see cref="WeightRowReader"/> (a 7B MLP weight's band of 2 x 128 rows is 11 MB of fp32 against the
/// 180 MB the whole weight would take), packs the codes two per byte as it goes and measures the weight error in the
/// same pass, so the weight is read once and never held whole as fp32. Codes, scales and zero points are bit-for-bit
/// those of <see cref="Int4BlockQuantizer.Quantize"/> followed by <see cref="MatMulNBitsPacker.PackCodes"/> (tested),
/// whatever the band size or the number of threads: every tile is computed the same way, and the error is summed per
/// tile and then in tile order.
/// </summary>
public static class Int4PackedQuantizer
{
    /// <summary>About this many floats of the weight are decoded at a time (16 MB).</summary>
    public const long DefaultBandFloats = 1 << 22;

    /// <param name="maxParallelism">Threads to use: -1 all cores, 1 serial (tests compare the two).</param>
    /// <param name="bandFloats">Floats decoded per band; at least one block row is read at a time.</param>
    public static PackedInt4Weight Quantize(WeightRowReader read, int k, int n, Int4QuantOptions? options = null,
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
        // Bands of whole block rows, each decoded and quantized by one worker into its own buffer: decoding and
        // rounding interleave on every core with no barrier between them, and a band is still hot in cache when its
        // tiles read it. At least four bands per core, so the last ones do not leave a core idle.
        int cores = maxParallelism > 0 ? maxParallelism : Environment.ProcessorCount;
        int blocksPerBand = (int)Math.Clamp(bandFloats / ((long)bs * n), 1, Math.Max(1, kBlocks / (4 * cores)));
        int bands = (kBlocks + blocksPerBand - 1) / blocksPerBand;
        int bandFloatsUsed = Math.Min(k, blocksPerBand * bs) * n;
        ParallelWork.Run(0, bands, maxParallelism, () => new float[bandFloatsUsed], (b, band) =>
        {
            int g0 = b * blocksPerBand, g1 = Math.Min(kBlocks, g0 + blocksPerBand);
            int r0 = g0 * bs, rows = Math.Min(k, g1 * bs) - r0;
            read(r0, rows, band.AsSpan(0, rows * n));
            unsafe
            {
                fixed (float* bandPointer = band)
                {
                    for (int tile = g0 * columnTiles; tile < g1 * columnTiles; tile++)
                        plan.RunTile(tile, (nint)bandPointer, r0, 0, sink);
                }
            }
        });
        double error = 0, norm = 0;
        for (int t = 0; t < plan.TileCount; t++)
        {
            error += sink.Errors![t];
            norm += sink.Norms![t];
        }
        return new PackedInt4Weight(k, n, options, sink.Packed!, sink.Scales!, sink.ZeroPoints!, norm > 0 ? Math.Sqrt(error / norm) : 0);
    }

    /// <summary>A reader over a weight already in memory ([K, N] row-major).</summary>
    public static WeightRowReader FromArray(float[] weight, int n) =>
        (first, count, destination) => weight.AsSpan(first * n, count * n).CopyTo(destination);
}
