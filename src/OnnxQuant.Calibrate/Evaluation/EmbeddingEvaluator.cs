using OnnxQuant.Calibrate.Verification;

namespace OnnxQuant.Calibrate.Evaluation;

/// <summary>
/// An encoder against its reference on held-out sentences: the Verifier's metrics (relative error, cosine of the
/// mean-pooled embeddings) plus nearest-neighbour agreement over the same pooled embeddings.
/// </summary>
internal static class EmbeddingEvaluator
{
    public static EmbeddingResult Run(EvalSession model, EvalSession reference, IReadOnlyList<int[]> sentences,
        IProgress<(int Done, int Total)>? progress, CancellationToken cancel)
    {
        var metrics = new ComparisonMetrics(ModelKind.Encoder);
        var pooled = new List<float[]>(sentences.Count);
        var referencePooled = new List<float[]>(sentences.Count);
        for (int i = 0; i < sentences.Count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            var ids = sentences[i];
            var hidden = model.Run(ids);
            var expected = reference.Run(ids);
            metrics.Add(ids, expected.Values, hidden.Values, expected.Shape);
            int width = (int)hidden.Shape[^1];
            pooled.Add(ComparisonMetrics.MeanPool(hidden.Values, ids.Length, width));
            referencePooled.Add(ComparisonMetrics.MeanPool(expected.Values, ids.Length, width));
            progress?.Report((i + 1, sentences.Count));
        }
        var report = metrics.ToReport();
        return new EmbeddingResult
        {
            Sentences = sentences.Count,
            MeanCosine = report.MeanCosine ?? double.NaN,
            MinCosine = report.MinCosine ?? double.NaN,
            NeighbourAgreement = NeighbourAgreement.Agreement(pooled, referencePooled),
            RelativeError = report.RelativeError,
        };
    }
}
