namespace OnnxQuant.Statistics;

/// <summary>
/// Statistics must be finite: a NaN or Inf max |x| turns into NaN smoothing scales and NaN activation scales, i.e. a
/// quantized model that runs but answers garbage. Calibration refuses to produce such statistics and every reader
/// refuses to use them.
/// </summary>
public static class StatsChecks
{
    /// <summary>Throws <see cref="OnnxQuantException"/> (about <paramref name="file"/>) at the first non-finite tensor.</summary>
    /// <param name="advice">What the user can do about it, appended to the message.</param>
    public static void EnsureFinite(CalibrationStats stats, string? file, string advice)
    {
        foreach (var t in stats.Tensors)
        {
            int bad = CountNonFinite(t.AbsMax) + CountNonFinite(t.MeanAbs) + CountNonFinite(t.SampleRows)
                + (float.IsFinite(t.Min) ? 0 : 1) + (float.IsFinite(t.Max) ? 0 : 1);
            if (bad > 0)
                throw new OnnxQuantException(file,
                    $"holds NaN or Inf statistics for activation '{t.Name}' ({bad} value(s)); {advice}");
        }
    }

    private static int CountNonFinite(ReadOnlySpan<float> values)
    {
        int count = 0;
        foreach (var v in values)
            if (!float.IsFinite(v))
                count++;
        return count;
    }
}
