using System.Diagnostics;

namespace OnnxQuant.Calibrate.Evaluation;

/// <summary>
/// Wall time of one inference on a fixed input: two warm-up runs, then the median of <c>runs</c> timed runs. The median,
/// and model and reference timed in alternation, because on a shared machine other processes add outliers and drift.
/// </summary>
internal static class LatencyProbe
{
    /// <summary>Prefill of <paramref name="prefill"/> (the first tokens of the text) and a 1-token forward, for the model and the reference.</summary>
    public static LatencyResult Measure(EvalSession model, EvalSession? reference, int[] prefill, int runs)
    {
        runs = Math.Max(1, runs);
        var (prefillMs, referencePrefillMs) = Medians(model, reference, prefill, runs);
        var (stepMs, referenceStepMs) = Medians(model, reference, prefill[..1], runs);
        return new LatencyResult
        {
            PrefillTokens = prefill.Length,
            Runs = runs,
            PrefillMs = prefillMs,
            StepMs = stepMs,
            ReferencePrefillMs = referencePrefillMs,
            ReferenceStepMs = referenceStepMs,
        };
    }

    private static (double Model, double? Reference) Medians(EvalSession model, EvalSession? reference, int[] ids, int runs)
    {
        for (int i = 0; i < 2; i++)
        {
            model.Run(ids);
            reference?.Run(ids);
        }
        var a = new double[runs];
        var b = new double[runs];
        for (int i = 0; i < runs; i++)
        {
            a[i] = Time(model, ids);
            if (reference is not null)
                b[i] = Time(reference, ids);
        }
        return (Median(a), reference is null ? null : Median(b));
    }

    private static double Time(EvalSession session, int[] ids)
    {
        long start = Stopwatch.GetTimestamp();
        session.Run(ids);
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    internal static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        int n = sorted.Length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}
