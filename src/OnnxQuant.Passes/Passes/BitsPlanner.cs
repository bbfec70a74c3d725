using OnnxQuant.Quantization;

namespace OnnxQuant.Passes;

/// <summary>One linear's measured choices: the relative output error and the emitted weight bytes at 4 bits, 8 bits and float.</summary>
public sealed record LinearChoices(string Linear, int K, int N, double Error4, double Error8, long Bytes4, long Bytes8, long BytesFloat);

/// <summary>
/// The bits of every linear mixed precision planned: 4, 8 or <see cref="Float"/>, with the measured choices and the
/// weight bytes the rewrite will emit (left in the pipeline's analyses for <see cref="W4RewritePass"/>).
/// </summary>
public sealed record BitsPlan(IReadOnlyList<LinearChoices> Choices, IReadOnlyDictionary<string, int> Bits, long BudgetBytes, long PlannedBytes)
{
    /// <summary>The "bits" of a linear kept in float.</summary>
    public const int Float = 32;

    /// <summary>A planned linear's bits, or null for one the plan does not cover (it gets 4 bits).</summary>
    public int? BitsOf(string linear) => Bits.TryGetValue(linear, out int bits) ? bits : null;

    public long Parameters => Choices.Sum(c => (long)c.K * c.N);

    /// <summary>8 x planned weight bytes / weight parameters of the planned linears (docs/architecture.md, "Mixed precision").</summary>
    public double AverageBits => Parameters == 0 ? 0 : 8.0 * PlannedBytes / Parameters;

    public long BytesOf(LinearChoices c) => Bits[c.Linear] switch { 4 => c.Bytes4, 8 => c.Bytes8, _ => c.BytesFloat };

    public double ErrorOf(LinearChoices c) => Bits[c.Linear] switch { 4 => c.Error4, 8 => c.Error8, _ => 0 };
}

/// <summary>
/// Chooses bits per linear under a byte budget: the assignment of 4 bits, 8 bits or float to every linear that minimises
/// the summed error within the budget (a multiple-choice knapsack), solved exactly by dynamic programming over the
/// extra bytes above all-4-bit, counted in units of at most 1/<see cref="DefaultBuckets"/> of what every linear in float
/// would add. Sizes are rounded up to units and the capacity down, so a plan never exceeds the budget; the unit does
/// not depend on the budget, so a larger budget never gives a larger summed error.
/// </summary>
public static class BitsPlanner
{
    /// <summary>Capacity units of the dynamic programme: 37 MiniLM linears waste under 0.05% of a budget to rounding.</summary>
    public const int DefaultBuckets = 1 << 16;

    /// <summary>Bytes of a [K, N] weight as MatMulNBits at <paramref name="bits"/>: B, scales and zero points (none when symmetric).</summary>
    public static long QuantizedBytes(int k, int n, int bits, Int4QuantOptions options, int scaleBytes)
    {
        long kBlocks = (k + options.BlockSize - 1) / options.BlockSize;
        long codes = (long)n * kBlocks * options.BlockSize * bits / 8;
        long zeroPoints = options.Scheme == Int4Scheme.Symmetric ? 0 : (long)n * ((kBlocks * bits + 7) / 8);
        return codes + (long)n * kBlocks * scaleBytes + zeroPoints;
    }

    /// <summary>The plan for <paramref name="choices"/> within <paramref name="budgetBytes"/> (which must hold every linear at 4 bits).</summary>
    public static BitsPlan Assign(IReadOnlyList<LinearChoices> choices, long budgetBytes, int buckets = DefaultBuckets)
    {
        long minimum = choices.Sum(c => c.Bytes4);
        if (minimum > budgetBytes)
            throw new ArgumentOutOfRangeException(nameof(budgetBytes), budgetBytes, $"the budget is below the {minimum} bytes every linear takes at 4 bits");
        int[] levels = [4, 8, BitsPlan.Float];
        long allFloat = choices.Sum(c => Math.Max(0, c.BytesFloat - c.Bytes4) + Math.Max(0, c.Bytes8 - c.Bytes4));
        long unit = Math.Max(1, (allFloat + buckets - 1) / buckets);
        int capacity = (int)Math.Min((budgetBytes - minimum) / unit, allFloat / unit + 1);

        // best[c] = least summed error of the linears so far with at most c extra units; pick[j][c] the level that got it.
        var best = new double[capacity + 1];
        var next = new double[capacity + 1];
        var pick = new byte[choices.Count][];
        for (int j = 0; j < choices.Count; j++)
        {
            var c = choices[j];
            var extra = new long[] { 0, Units(c.Bytes8 - c.Bytes4, unit), Units(c.BytesFloat - c.Bytes4, unit) };
            var error = new[] { c.Error4, c.Error8, 0.0 };
            pick[j] = new byte[capacity + 1];
            for (int cap = 0; cap <= capacity; cap++)
            {
                double least = double.PositiveInfinity;
                for (int l = 0; l < 3; l++)
                {
                    // Fewer bits win ties (levels in order, strict <), so equal-error choices keep the smaller weight.
                    if (extra[l] > cap)
                        continue;
                    double e = best[cap - extra[l]] + error[l];
                    if (e < least)
                    {
                        least = e;
                        pick[j][cap] = (byte)l;
                    }
                }
                next[cap] = least;
            }
            (best, next) = (next, best);
        }

        var chosen = new int[choices.Count];
        long used = minimum;
        int left = capacity;
        for (int j = choices.Count - 1; j >= 0; j--)
        {
            var c = choices[j];
            int level = pick[j][left];
            chosen[j] = levels[level];
            left -= (int)(level switch { 1 => Units(c.Bytes8 - c.Bytes4, unit), 2 => Units(c.BytesFloat - c.Bytes4, unit), _ => 0 });
            used += level switch { 1 => c.Bytes8 - c.Bytes4, 2 => c.BytesFloat - c.Bytes4, _ => 0 };
        }
        var bits = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int j = 0; j < choices.Count; j++)
            bits[choices[j].Linear] = chosen[j];
        return new BitsPlan(choices, bits, budgetBytes, used);
    }

    // Rounded up, so the units a plan uses bound its bytes from above; a "step" that saves bytes costs none.
    private static long Units(long bytes, long unit) => bytes <= 0 ? 0 : (bytes + unit - 1) / unit;
}
