using System.Numerics.Tensors;
using OnnxQuant.Analysis;

namespace OnnxQuant.Calibrate.Evaluation;

/// <summary>
/// The one comparison of a model's outputs with a reference's, sample by sample, that both `eval` and the verification
/// after smooth/awq use: causal LMs by next-token loss (perplexity), top-1 agreement and logits error over chosen
/// positions of each window; encoders by the cosine of mean-pooled embeddings and the hidden-state error.
/// </summary>
internal sealed class ComparisonMetrics
{
    private readonly ModelTask _kind;
    private readonly bool _rejectNonFinite;
    private double _diffSquares, _referenceSquares, _maxAbs;
    private double _nll, _referenceNll;
    private long _predictions, _agreements, _tokens, _scored;
    private readonly List<double> _cosines = new();
    private int _samples;
    private bool _hasReference;

    /// <param name="rejectNonFinite">Fail on NaN or Inf logits instead of reporting a NaN perplexity.</param>
    public ComparisonMetrics(ModelTask kind, bool rejectNonFinite = false) => (_kind, _rejectNonFinite) = (kind, rejectNonFinite);

    /// <summary>Encoders: the mean-pooled embeddings of each sentence, model and reference, in order.</summary>
    public List<float[]> Pooled { get; } = new();

    public List<float[]> ReferencePooled { get; } = new();

    /// <summary>
    /// One window of a causal LM ([1, sequence, vocab] logits): positions p >= <paramref name="firstScored"/> are scored
    /// (predicted from p - 1), and the logits at positions [<paramref name="compareFrom"/>, <paramref name="compareTo"/>)
    /// are compared with the reference's (when there is one).
    /// </summary>
    public void AddWindow(int[] ids, EvalOutput model, EvalOutput? reference, int firstScored, int compareFrom, int compareTo)
    {
        int vocab = (int)model.Shape[^1];
        _samples++;
        _tokens += ids.Length;
        _scored += ids.Length - firstScored;
        _nll += WindowLoss(model.Values, ids, firstScored, vocab, model.Label);
        if (reference is null)
            return;
        _hasReference = true;
        CheckSameSize(model, reference, $"gives {reference.Shape[^1]} logits per token where {model.Label} gives {vocab}");
        _referenceNll += WindowLoss(reference.Values, ids, firstScored, vocab, reference.Label);
        int from = compareFrom * vocab, count = (compareTo - compareFrom) * vocab;
        AddError(model.Values.AsSpan(from, count), reference.Values.AsSpan(from, count));
        for (int p = compareFrom; p < compareTo; p++)
        {
            _predictions++;
            if (TensorPrimitives.IndexOfMax(model.Values.AsSpan(p * vocab, vocab)) == TensorPrimitives.IndexOfMax(reference.Values.AsSpan(p * vocab, vocab)))
                _agreements++;
        }
    }

    /// <summary>One sentence of an encoder ([1, sequence, hidden]): error over every value, cosine of the mean-pooled embeddings.</summary>
    public void AddSentence(int[] ids, EvalOutput model, EvalOutput reference)
    {
        _tokens += ids.Length;
        AddSample(model, reference);
    }

    /// <summary>One sample of a model fed arrays (.npz), [1, ..., width]: error over every value, cosine of the outputs pooled over the rows.</summary>
    public void AddSample(EvalOutput model, EvalOutput reference)
    {
        CheckSameSize(model, reference, $"gives {reference.Values.Length} output values where {model.Label} gives {model.Values.Length}");
        _samples++;
        AddError(model.Values, reference.Values);
        int width = (int)model.Shape[^1], sequence = model.Values.Length / Math.Max(1, width);
        var pooled = MeanPool(model.Values, sequence, width);
        var referencePooled = MeanPool(reference.Values, sequence, width);
        _cosines.Add(TensorPrimitives.CosineSimilarity(referencePooled, pooled));
        Pooled.Add(pooled);
        ReferencePooled.Add(referencePooled);
    }

    // ---- the figures so far ----

    public int Samples => _samples;

    public long Tokens => _tokens;

    /// <summary>Causal LMs: tokens whose next-token loss was scored.</summary>
    public long ScoredTokens => _scored;

    /// <summary>||model - reference|| / ||reference|| over the compared output values.</summary>
    public double RelativeError => Math.Sqrt(_diffSquares / Math.Max(_referenceSquares, 1e-300));

    public double MaxAbsError => _maxAbs;

    public double? Top1Agreement => _kind == ModelTask.CausalLm && _predictions > 0 ? (double)_agreements / _predictions : null;

    public double? Perplexity => _kind == ModelTask.CausalLm && _scored > 0 ? Math.Exp(_nll / _scored) : null;

    public double? ReferencePerplexity => _hasReference && _kind == ModelTask.CausalLm && _scored > 0 ? Math.Exp(_referenceNll / _scored) : null;

    public double? MeanCosine => _cosines.Count > 0 ? _cosines.Average() : null;

    public double? MinCosine => _cosines.Count > 0 ? _cosines.Min() : null;

    private void AddError(ReadOnlySpan<float> model, ReadOnlySpan<float> reference)
    {
        var diff = new float[model.Length];
        TensorPrimitives.Subtract(model, reference, diff);
        _diffSquares += SumSquares(diff);
        _referenceSquares += SumSquares(reference);
        if (diff.Length > 0)
            _maxAbs = Math.Max(_maxAbs, Math.Abs(TensorPrimitives.MaxMagnitude(diff)));
    }

    private static void CheckSameSize(EvalOutput model, EvalOutput reference, string problem)
    {
        if (reference.Values.Length != model.Values.Length)
            throw new OnnxQuantException(reference.Label, problem, ExitCode.Unsupported);
    }

    /// <summary>Sum of next-token losses of positions firstScored..n-1; per-position losses in parallel, summed in order.</summary>
    private double WindowLoss(float[] logits, int[] ids, int firstScored, int vocab, string label)
    {
        int count = ids.Length - firstScored;
        foreach (var id in ids.AsSpan(firstScored))
            if ((uint)id >= (uint)vocab)
                throw new OnnxQuantException(label, $"token id {id} is outside the model's vocabulary of {vocab}; is the tokenizer the model's?", ExitCode.BadInput);
        var losses = new double[count];
        Parallel.For(0, count, k =>
        {
            int p = firstScored + k;
            losses[k] = NegativeLogLikelihood(logits.AsSpan((p - 1) * vocab, vocab), ids[p]);
        });
        double sum = 0;
        foreach (var loss in losses)
            sum += loss;
        if (_rejectNonFinite && !double.IsFinite(sum))
            throw new OnnxQuantException(label, "computes NaN or Inf logits on the evaluation text (NaN or Inf weights, or an overflow), so it has no perplexity. Check the weights with `onnxquant inspect`", ExitCode.BadInput);
        return sum;
    }

    internal static double NegativeLogLikelihood(ReadOnlySpan<float> logits, int target)
    {
        float max = TensorPrimitives.Max(logits);
        double sum = 0;
        foreach (var v in logits)
            sum += Math.Exp(v - max);
        return Math.Log(sum) + max - logits[target];
    }

    // The sample has no padding (one sequence per run), so the attention-mask mean is the plain mean over tokens.
    internal static float[] MeanPool(ReadOnlySpan<float> hidden, int sequence, int width)
    {
        var pooled = new float[width];
        for (int t = 0; t < sequence; t++)
            TensorPrimitives.Add(pooled, hidden.Slice(t * width, width), pooled);
        TensorPrimitives.Divide(pooled, sequence, pooled);
        return pooled;
    }

    private static double SumSquares(ReadOnlySpan<float> values)
    {
        double sum = 0;
        foreach (var v in values)
            sum += (double)v * v;
        return sum;
    }
}
