using System.Numerics.Tensors;
using OnnxQuant.Calibrate.Verification;

namespace OnnxQuant.Calibrate.Evaluation;

/// <summary>
/// Sliding-window perplexity of a causal LM over a token stream (<see cref="SlidingWindows"/>), optionally against a
/// reference model run on the same windows: its perplexity, top-1 next-token agreement and the logits' relative error
/// at the scored positions. The per-token loss is the Verifier's (<see cref="ComparisonMetrics.NegativeLogLikelihood"/>).
/// </summary>
internal static class PerplexityEvaluator
{
    public static PerplexityResult Run(EvalSession model, EvalSession? reference, int[] stream, int context, int stride,
        IProgress<(int Done, int Total)>? progress, CancellationToken cancel)
    {
        var windows = SlidingWindows.Plan(stream.Length, context, stride);
        double nll = 0, referenceNll = 0, diffSquares = 0, referenceSquares = 0;
        long scored = 0, agreements = 0;
        for (int i = 0; i < windows.Count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            var w = windows[i];
            var ids = stream.AsSpan(w.Start, w.Length).ToArray();
            var logits = model.Run(ids);
            int vocab = (int)logits.Shape[^1];
            nll += WindowLoss(logits.Values, ids, w.FirstScored, vocab, model.Label);
            scored += w.ScoredTokens;
            if (reference is not null)
            {
                var expected = reference.Run(ids);
                if (expected.Values.Length != logits.Values.Length)
                    throw new OnnxQuantException(reference.Label, $"gives {expected.Shape[^1]} logits per token where {model.Label} gives {vocab}", ExitCode.Unsupported);
                referenceNll += WindowLoss(expected.Values, ids, w.FirstScored, vocab, reference.Label);
                // Positions FirstScored-1 .. Length-2 make the scored predictions.
                int from = (w.FirstScored - 1) * vocab, count = w.ScoredTokens * vocab;
                var a = logits.Values.AsSpan(from, count);
                var b = expected.Values.AsSpan(from, count);
                var diff = new float[count];
                TensorPrimitives.Subtract(a, b, diff);
                diffSquares += TensorPrimitives.Dot(diff, diff);
                referenceSquares += TensorPrimitives.Dot(b, b);
                for (int p = 0; p < w.ScoredTokens; p++)
                    if (TensorPrimitives.IndexOfMax(a.Slice(p * vocab, vocab)) == TensorPrimitives.IndexOfMax(b.Slice(p * vocab, vocab)))
                        agreements++;
            }
            progress?.Report((i + 1, windows.Count));
        }
        return new PerplexityResult
        {
            Perplexity = Math.Exp(nll / scored),
            ReferencePerplexity = reference is null ? null : Math.Exp(referenceNll / scored),
            Top1Agreement = reference is null ? null : (double)agreements / scored,
            RelativeError = reference is null ? null : Math.Sqrt(diffSquares / Math.Max(referenceSquares, 1e-300)),
            ScoredTokens = scored,
            StreamTokens = stream.Length,
            Windows = windows.Count,
            Context = context,
            Stride = stride,
        };
    }

    /// <summary>Sum of next-token losses of positions FirstScored..n-1; per-position losses in parallel, summed in order.</summary>
    private static double WindowLoss(float[] logits, int[] ids, int firstScored, int vocab, string label)
    {
        int count = ids.Length - firstScored;
        foreach (var id in ids.AsSpan(firstScored))
            if ((uint)id >= (uint)vocab)
                throw new OnnxQuantException(label, $"token id {id} is outside the model's vocabulary of {vocab}; is the tokenizer the model's?", ExitCode.BadInput);
        var losses = new double[count];
        Parallel.For(0, count, k =>
        {
            int p = firstScored + k;
            losses[k] = ComparisonMetrics.NegativeLogLikelihood(logits.AsSpan((p - 1) * vocab, vocab), ids[p]);
        });
        double sum = 0;
        foreach (var loss in losses)
            sum += loss;
        if (!double.IsFinite(sum))
            throw new OnnxQuantException(label, "computes NaN or Inf logits on the evaluation text (NaN or Inf weights, or an overflow), so it has no perplexity. Check the weights with `onnxquant inspect`", ExitCode.BadInput);
        return sum;
    }
}
