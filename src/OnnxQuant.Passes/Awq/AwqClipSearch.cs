using System.Numerics.Tensors;
using OnnxQuant.Numerics;
using OnnxQuant.Quantization;

namespace OnnxQuant.Awq;

/// <summary>What the clip search chose for one weight.</summary>
/// <param name="Ratios">[N, k_blocks]: each block's range is shrunk to this fraction (1 = unclipped).</param>
/// <param name="UnclippedError">Sum over blocks of the squared block output errors without clipping.</param>
/// <param name="ClippedError">The same with the chosen ratios.</param>
public sealed record AwqClipResult(float[] Ratios, double UnclippedError, double ClippedError)
{
    /// <summary>Fraction of blocks whose range was shrunk.</summary>
    public double ClippedFraction => Ratios.Count(r => r < 1f) / (double)Ratios.Length;
}

/// <summary>
/// AWQ's clip search for one weight (after its group's scale is applied): for each 4-bit block, the range shrink
/// 1 - MaxShrink * i / ClipSteps (i = 0..ClipSteps) whose block output error on the recorded rows is smallest.
/// </summary>
public static class AwqClipSearch
{
    /// <param name="rows">The activation rows the weight reads, already divided by the group's scale.</param>
    /// <param name="weight">The logical [K, N] weight, already multiplied by the group's scale.</param>
    public static AwqClipResult Search(MatrixView rows, float[] weight, int n, AwqOptions options, CancellationToken cancel = default)
    {
        options.Validate();
        var q = options.Quantization;
        int k = rows.Cols, kBlocks = (k + q.BlockSize - 1) / q.BlockSize, blocks = n * kBlocks;
        var bestRatio = new float[blocks];
        var bestError = new float[blocks];
        var errors = new float[blocks];
        var ratios = new float[n];
        double unclipped = 0;
        var grams = BlockGrams.Create(rows, q.BlockSize);
        for (int i = 0; i <= options.ClipSteps; i++)
        {
            cancel.ThrowIfCancellationRequested();
            float ratio = 1f - options.MaxShrink * i / options.ClipSteps;
            ratios.AsSpan().Fill(ratio);
            QuantizationError.BlockSquaredErrors(grams, weight, n, q, i == 0 ? default : ratios, errors);
            if (i == 0)
            {
                errors.CopyTo(bestError, 0);
                bestRatio.AsSpan().Fill(1f);
                unclipped = errors.Sum(e => (double)e);
                continue;
            }
            for (int b = 0; b < blocks; b++)
                if (errors[b] < bestError[b])
                {
                    bestError[b] = errors[b];
                    bestRatio[b] = ratio;
                }
        }
        return new AwqClipResult(bestRatio, unclipped, bestError.Sum(e => (double)e));
    }

    /// <summary>
    /// Clamps each block of <paramref name="weight"/> ([K, N], in place) to the range the quantizer would use with
    /// <paramref name="ratios"/>, so quantizing the result without clip ratios gives the same codes and scales.
    /// Asymmetric: [min(min,0) r, max(max,0) r]. Symmetric: the extreme's side to r |e|, the other side to 7/8 of that
    /// (the last code there; anything beyond it already lands on that code, and staying below r |e| keeps the extreme's sign).
    /// </summary>
    public static void ApplyClip(float[] weight, int k, int n, float[] ratios, Int4QuantOptions options)
    {
        int bs = options.BlockSize, kBlocks = (k + bs - 1) / bs;
        if (ratios.Length != n * kBlocks)
            throw new ArgumentException($"{ratios.Length} clip ratios for N * k_blocks = {n * kBlocks} blocks");
        Parallel.For(0, kBlocks, g =>
        {
            int r0 = g * bs, r1 = Math.Min(k, r0 + bs);
            var lo = weight.AsSpan(r0 * n, n).ToArray();
            var hi = lo.ToArray();
            for (int row = r0 + 1; row < r1; row++)
            {
                var src = weight.AsSpan(row * n, n);
                TensorPrimitives.Min(lo, src, lo);
                TensorPrimitives.Max(hi, src, hi);
            }
            for (int col = 0; col < n; col++)
            {
                float r = ratios[col * kBlocks + g];
                if (r >= 1f)
                {
                    (lo[col], hi[col]) = (float.NegativeInfinity, float.PositiveInfinity);
                    continue;
                }
                if (options.Scheme == Int4Scheme.Asymmetric)
                {
                    lo[col] = MathF.Min(lo[col], 0f) * r;
                    hi[col] = MathF.Max(hi[col], 0f) * r;
                }
                else
                {
                    // The quantizer's extreme: the larger magnitude, the minimum on a tie.
                    bool maxIsExtreme = MathF.Abs(hi[col]) > MathF.Abs(lo[col]);
                    float e = (maxIsExtreme ? hi[col] : -lo[col]) * r;
                    (lo[col], hi[col]) = maxIsExtreme ? (-e * 0.875f, e) : (-e, e * 0.875f);
                }
            }
            for (int row = r0; row < r1; row++)
            {
                var dst = weight.AsSpan(row * n, n);
                TensorPrimitives.Max(dst, lo, dst);
                TensorPrimitives.Min(dst, hi, dst);
            }
        });
    }
}
