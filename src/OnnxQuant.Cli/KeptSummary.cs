namespace OnnxQuant.Cli;

/// <summary>One linear kept in floating point and why ("kept: LM head (--include-lm-head to quantize it)").</summary>
public sealed record KeptLinear(string Name, OnnxQuant.Analysis.KeepReason Code, string Reason);

/// <summary>The kept linears in one line, grouped by reason: every reason is told, not only the first few names.</summary>
internal static class KeptSummary
{
    /// <summary>"; 12 kept: 12 computed weight (e.g. '/attn/MatMul'), ..." or "" when none.</summary>
    public static string Text(IReadOnlyList<KeptLinear> kept)
    {
        if (kept.Count == 0)
            return "";
        var groups = kept.GroupBy(k => k.Code)
            .Select(g => $"{g.Count()} {OnnxQuant.Analysis.KeepReasons.Describe(g.Key)} ({Format.Names(g.Select(k => k.Name), 2)})");
        return $"; {kept.Count} kept: {string.Join("; ", groups)}";
    }
}
