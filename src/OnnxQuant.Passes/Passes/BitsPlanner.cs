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
/// Chooses bits per linear under a byte budget: start every linear at 4 bits, then take upgrade steps (4 -> 8, 8 -> float;
/// a linear whose 8 -> float step saves more per byte than its 4 -> 8 step gets one 4 -> float step instead) in order of
/// error saved per extra byte, and stop at the first step that does not fit. Stopping there, rather than skipping to
/// smaller steps, makes the chosen set a prefix of one fixed order, so more budget never lowers any linear's bits.
/// </summary>
public static class BitsPlanner
{
    private readonly record struct Step(int Linear, int Order, int To, double Saved, long Extra)
    {
        public double PerByte => Extra <= 0 ? double.PositiveInfinity : Saved / Extra;
    }

    /// <summary>Bytes of a [K, N] weight as MatMulNBits at <paramref name="bits"/>: B, scales and zero points (none when symmetric).</summary>
    public static long QuantizedBytes(int k, int n, int bits, Int4QuantOptions options, int scaleBytes)
    {
        long kBlocks = (k + options.BlockSize - 1) / options.BlockSize;
        long codes = (long)n * kBlocks * options.BlockSize * bits / 8;
        long zeroPoints = options.Scheme == Int4Scheme.Symmetric ? 0 : (long)n * ((kBlocks * bits + 7) / 8);
        return codes + (long)n * kBlocks * scaleBytes + zeroPoints;
    }

    /// <summary>The plan for <paramref name="choices"/> within <paramref name="budgetBytes"/> (which must hold every linear at 4 bits).</summary>
    public static BitsPlan Assign(IReadOnlyList<LinearChoices> choices, long budgetBytes)
    {
        long used = choices.Sum(c => c.Bytes4);
        if (used > budgetBytes)
            throw new ArgumentOutOfRangeException(nameof(budgetBytes), budgetBytes, $"the budget is below the {used} bytes every linear takes at 4 bits");
        var steps = new List<Step>();
        for (int i = 0; i < choices.Count; i++)
        {
            var c = choices[i];
            var up8 = new Step(i, 0, 8, c.Error4 - c.Error8, c.Bytes8 - c.Bytes4);
            var upFloat = new Step(i, 1, BitsPlan.Float, c.Error8, c.BytesFloat - c.Bytes8);
            if (upFloat.PerByte > up8.PerByte)
                steps.Add(new Step(i, 0, BitsPlan.Float, c.Error4, c.BytesFloat - c.Bytes4));
            else
            {
                steps.Add(up8);
                steps.Add(upFloat);
            }
        }
        var ordered = steps.OrderByDescending(s => s.PerByte).ThenBy(s => s.Order).ThenBy(s => s.Linear).ToList();
        var bits = choices.ToDictionary(c => c.Linear, _ => 4, StringComparer.Ordinal);
        foreach (var step in ordered)
        {
            if (used + step.Extra > budgetBytes)
                break;
            used += step.Extra;
            bits[choices[step.Linear].Linear] = step.To;
        }
        return new BitsPlan(choices, bits, budgetBytes, used);
    }
}
