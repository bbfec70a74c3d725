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

    /// <summary>Median ms of one run on <paramref name="ids"/>, model and reference timed alternately.</summary>
    internal static (double Model, double? Reference) Medians(EvalSession model, EvalSession? reference, int[] ids, int runs) =>
        AlternatingMedians(() => model.Run(ids), reference is null ? null : () => reference.Run(ids), runs);

    /// <summary>Two warm-up runs of each, then <paramref name="runs"/> timed runs in alternation; the median of each in ms.</summary>
    private static (double First, double? Second) AlternatingMedians(Action first, Action? second, int runs)
    {
        for (int i = 0; i < 2; i++)
        {
            first();
            second?.Invoke();
        }
        var a = new double[runs];
        var b = new double[runs];
        for (int i = 0; i < runs; i++)
        {
            a[i] = Time(first);
            if (second is not null)
                b[i] = Time(second);
        }
        return (Median(a), second is null ? null : Median(b));
    }

    private static double Time(Action run)
    {
        long start = Stopwatch.GetTimestamp();
        run();
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    internal static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        int n = sorted.Length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}
