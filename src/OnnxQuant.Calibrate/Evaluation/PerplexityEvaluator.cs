using OnnxQuant.Analysis;

namespace OnnxQuant.Calibrate.Evaluation;

/// <summary>
/// One window of token ids for a causal LM: positions p >= <see cref="FirstScored"/> are scored, and the logits at
/// positions [<see cref="CompareFrom"/>, <see cref="CompareTo"/>) are compared with a reference's.
/// </summary>
internal readonly record struct LmWindow(int[] Ids, int FirstScored, int CompareFrom, int CompareTo);

/// <summary>
/// Sliding-window perplexity of a causal LM over a token stream (<see cref="SlidingWindows"/>), optionally against a
/// reference model run on the same windows: its perplexity, top-1 next-token agreement and the logits' relative error
/// at the scored positions, all from <see cref="ComparisonMetrics"/>.
/// </summary>
internal static class PerplexityEvaluator
{
    public static PerplexityResult Run(EvalSession model, EvalSession? reference, int[] stream, int context, int stride,
        IProgress<(int Done, int Total)>? progress, CancellationToken cancel)
    {
        var windows = SlidingWindows.Plan(stream.Length, context, stride);
        // Positions FirstScored-1 .. Length-2 make the scored predictions; those are the ones compared.
        var metrics = Compare(model, reference, windows.Count, i =>
        {
            var w = windows[i];
            return new LmWindow(stream.AsSpan(w.Start, w.Length).ToArray(), w.FirstScored, w.FirstScored - 1, w.Length - 1);
        }, rejectNonFinite: true, progress, cancel);
        return new PerplexityResult
        {
            Perplexity = metrics.Perplexity!.Value,
            ReferencePerplexity = metrics.ReferencePerplexity,
            Top1Agreement = reference is null ? null : metrics.Top1Agreement,
            RelativeError = reference is null ? null : metrics.RelativeError,
            ScoredTokens = metrics.ScoredTokens,
            StreamTokens = stream.Length,
            Windows = windows.Count,
            Context = context,
            Stride = stride,
        };
    }

    /// <summary>Runs the model (and the reference) on windows 0..count-1 and compares them.</summary>
    /// <param name="rejectNonFinite">Fail on NaN or Inf logits rather than report a NaN perplexity.</param>
    public static ComparisonMetrics Compare(EvalSession model, EvalSession? reference, int count, Func<int, LmWindow> windowAt,
        bool rejectNonFinite, IProgress<(int Done, int Total)>? progress, CancellationToken cancel)
    {
        var metrics = new ComparisonMetrics(ModelTask.CausalLm, rejectNonFinite);
        for (int i = 0; i < count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            var w = windowAt(i);
            metrics.AddWindow(w.Ids, model.Run(w.Ids), reference?.Run(w.Ids), w.FirstScored, w.CompareFrom, w.CompareTo);
            progress?.Report((i + 1, count));
        }
        return metrics;
    }
}
