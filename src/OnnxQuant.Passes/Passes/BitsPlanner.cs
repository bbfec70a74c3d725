using OnnxQuant.Quantization;

namespace OnnxQuant.Passes;

/// <summary>
/// One linear's measured choices: the relative output error and the emitted weight bytes at 4 bits (blocks of the
/// rewrite's size), 8 bits and float, and at 4 bits with smaller blocks (<see cref="Finer"/>).
/// </summary>
public sealed record LinearChoices(string Linear, int K, int N, double Error4, double Error8, long Bytes4, long Bytes8, long BytesFloat)
{
    /// <summary>4 bits with blocks smaller than the rewrite's: more scales and zero points, less error.</summary>
    public IReadOnlyList<FinerBlocks> Finer { get; init; } = [];
}

/// <summary>A linear at 4 bits with blocks of <paramref name="BlockSize"/> along K: its error and emitted bytes.</summary>
public sealed record FinerBlocks(int BlockSize, double Error, long Bytes);

/// <summary>
/// The bits of every linear mixed precision planned: 4, 8 or <see cref="Float"/>, with the measured choices and the
/// weight bytes the rewrite will emit (left in the pipeline's analyses for <see cref="W4RewritePass"/>).
/// </summary>
public sealed record BitsPlan(IReadOnlyList<LinearChoices> Choices, IReadOnlyDictionary<string, int> Bits, long BudgetBytes, long PlannedBytes)
{
    /// <summary>The "bits" of a linear kept in float.</summary>
    public const int Float = 32;

    /// <summary>The 4-bit linears planned with blocks smaller than the rewrite's, and their block size.</summary>
    public IReadOnlyDictionary<string, int> BlockSizes { get; init; } = new Dictionary<string, int>(StringComparer.Ordinal);

    /// <summary>A planned linear's bits, or null for one the plan does not cover (it gets 4 bits).</summary>
    public int? BitsOf(string linear) => Bits.TryGetValue(linear, out int bits) ? bits : null;

    /// <summary>A planned 4-bit linear's smaller block size, or null for the rewrite's own.</summary>
    public int? BlockSizeOf(string linear) => BlockSizes.TryGetValue(linear, out int size) ? size : null;

    public long Parameters => Choices.Sum(c => (long)c.K * c.N);

    /// <summary>8 x planned weight bytes / weight parameters of the planned linears (docs/architecture.md, "Mixed precision").</summary>
    public double AverageBits => Parameters == 0 ? 0 : 8.0 * PlannedBytes / Parameters;

    public long BytesOf(LinearChoices c) => Bits[c.Linear] switch { 4 => Finer(c)?.Bytes ?? c.Bytes4, 8 => c.Bytes8, _ => c.BytesFloat };

    public double ErrorOf(LinearChoices c) => Bits[c.Linear] switch { 4 => Finer(c)?.Error ?? c.Error4, 8 => c.Error8, _ => 0 };

    private FinerBlocks? Finer(LinearChoices c) => BlockSizeOf(c.Linear) is { } size ? c.Finer.Single(f => f.BlockSize == size) : null;
}

/// <summary>
/// Chooses bits per linear under a byte budget: the assignment of 4 bits (at the rewrite's blocks or a smaller block
/// size), 8 bits or float to every linear that minimises the summed error within the budget (a multiple-choice
/// knapsack), solved exactly by dynamic programming over the extra bytes above all-4-bit, counted in units of at most
/// 1/<see cref="DefaultBuckets"/> of what every choice together would add. Sizes are rounded up to units and the
/// capacity down, so a plan never exceeds the budget; the unit does not depend on the budget, so a larger budget never
/// gives a larger summed error.
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
        var options = choices.Select(Options).ToList();
        long allExtra = options.Sum(o => o.Sum(x => Math.Max(0, x.Extra)));
        long unit = Math.Max(1, (allExtra + buckets - 1) / buckets);
        int capacity = (int)Math.Min((budgetBytes - minimum) / unit, allExtra / unit + 1);

        // best[c] = least summed error of the linears so far with at most c extra units; pick[j][c] the option that got it.
        var best = new double[capacity + 1];
        var next = new double[capacity + 1];
        var pick = new byte[choices.Count][];
        for (int j = 0; j < choices.Count; j++)
        {
            var o = options[j];
            var units = o.Select(x => Units(x.Extra, unit)).ToArray();
            pick[j] = new byte[capacity + 1];
            for (int cap = 0; cap <= capacity; cap++)
            {
                double least = double.PositiveInfinity;
                for (int l = 0; l < o.Length; l++)
                {
                    // Options in order of bits, then bytes; strict < lets the first win ties, so equal errors keep the smaller weight.
                    if (units[l] > cap)
                        continue;
                    double e = best[cap - units[l]] + o[l].Error;
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

        var bits = new Dictionary<string, int>(StringComparer.Ordinal);
        var blockSizes = new Dictionary<string, int>(StringComparer.Ordinal);
        long used = minimum;
        int left = capacity;
        for (int j = choices.Count - 1; j >= 0; j--)
        {
            var chosen = options[j][pick[j][left]];
            bits[choices[j].Linear] = chosen.Bits;
            if (chosen.BlockSize is { } size)
                blockSizes[choices[j].Linear] = size;
            left -= (int)Units(chosen.Extra, unit);
            used += chosen.Extra;
        }
        return new BitsPlan(choices, bits, budgetBytes, used) { BlockSizes = blockSizes };
    }

    private readonly record struct Option(int Bits, int? BlockSize, long Extra, double Error);

    // 4 bits at the rewrite's blocks first (no extra bytes), then smaller blocks, 8 bits, float.
    private static Option[] Options(LinearChoices c) =>
    [
        new(4, null, 0, c.Error4),
        .. c.Finer.Select(f => new Option(4, f.BlockSize, f.Bytes - c.Bytes4, f.Error)),
        new(8, null, c.Bytes8 - c.Bytes4, c.Error8),
        new(BitsPlan.Float, null, c.BytesFloat - c.Bytes4, 0),
    ];

    // Rounded up, so the units a plan uses bound its bytes from above; a "step" that saves bytes costs none.
    private static long Units(long bytes, long unit) => bytes <= 0 ? 0 : (bytes + unit - 1) / unit;
}
