using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Data;

namespace OnnxQuant.Calibrate.Evaluation;

/// <summary>
/// An encoder against its reference on held-out sentences: the comparison's metrics (relative error, cosine of the
/// mean-pooled embeddings) plus nearest-neighbour agreement over the same pooled embeddings.
/// </summary>
internal static class EmbeddingEvaluator
{
    public static EmbeddingResult Run(EvalSession model, EvalSession reference, IReadOnlyList<int[]> sentences,
        IProgress<(int Done, int Total)>? progress, CancellationToken cancel)
    {
        var metrics = Compare(model, reference, sentences, progress, cancel);
        return new EmbeddingResult
        {
            Sentences = sentences.Count,
            MeanCosine = metrics.MeanCosine ?? double.NaN,
            MinCosine = metrics.MinCosine ?? double.NaN,
            NeighbourAgreement = NeighbourAgreement.Agreement(metrics.Pooled, metrics.ReferencePooled),
            RelativeError = metrics.RelativeError,
        };
    }

    /// <summary>Runs both models on every sentence and compares their hidden states.</summary>
    public static ComparisonMetrics Compare(EvalSession model, EvalSession reference, IReadOnlyList<int[]> sentences,
        IProgress<(int Done, int Total)>? progress, CancellationToken cancel)
    {
        var metrics = new ComparisonMetrics(ModelTask.Encoder);
        for (int i = 0; i < sentences.Count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            metrics.AddSentence(sentences[i], model.Run(sentences[i]), reference.Run(sentences[i]));
            progress?.Report((i + 1, sentences.Count));
        }
        return metrics;
    }

    /// <summary>Runs both models on the first <paramref name="count"/> samples of non-text feeds and compares their outputs.</summary>
    public static ComparisonMetrics Compare(EvalSession model, EvalSession reference, ArrayFeeds feeds, int count,
        IProgress<(int Done, int Total)>? progress, CancellationToken cancel)
    {
        var metrics = new ComparisonMetrics(ModelTask.Encoder);
        for (int i = 0; i < count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            metrics.AddSample(model.Run(feeds, i), reference.Run(feeds, i));
            progress?.Report((i + 1, count));
        }
        return metrics;
    }
}
