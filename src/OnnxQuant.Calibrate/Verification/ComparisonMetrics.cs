using System.Numerics.Tensors;

namespace OnnxQuant.Calibrate.Verification;

/// <summary>Accumulates the comparison of two models' outputs sample by sample.</summary>
internal sealed class ComparisonMetrics
{
    private readonly ModelKind _kind;
    private double _diffSquares, _referenceSquares, _maxAbs;
    private double _nllOriginal, _nllEmitted;
    private long _predictions, _agreements, _tokens;
    private readonly List<double> _cosines = new();
    private int _samples;

    public ComparisonMetrics(ModelKind kind) => _kind = kind;

    /// <summary>One sample: its token ids and both outputs, shaped [1, sequence, width].</summary>
    public void Add(int[] ids, float[] original, float[] emitted, long[] shape)
    {
        if (original.Length != emitted.Length)
            throw new OnnxQuantException(null, $"the emitted model's output has {emitted.Length} values where the original has {original.Length}", ExitCode.Unsupported);
        _samples++;
        _tokens += ids.Length;
        var diff = new float[original.Length];
        TensorPrimitives.Subtract(emitted, original, diff);
        _diffSquares += SumSquares(diff);
        _referenceSquares += SumSquares(original);
        _maxAbs = Math.Max(_maxAbs, Math.Abs(TensorPrimitives.MaxMagnitude(diff)));
        int sequence = (int)shape[^2], width = (int)shape[^1];
        if (_kind == ModelKind.CausalLm)
            AddLanguageModel(ids, original, emitted, sequence, width);
        else
            _cosines.Add(TensorPrimitives.CosineSimilarity(MeanPool(original, sequence, width), MeanPool(emitted, sequence, width)));
    }

    private void AddLanguageModel(int[] ids, float[] a, float[] b, int sequence, int vocab)
    {
        for (int t = 0; t < sequence; t++)
        {
            var rowA = a.AsSpan(t * vocab, vocab);
            var rowB = b.AsSpan(t * vocab, vocab);
            _predictions++;
            if (TensorPrimitives.IndexOfMax(rowA) == TensorPrimitives.IndexOfMax(rowB))
                _agreements++;
            if (t + 1 < ids.Length && t + 1 < sequence)
            {
                int target = ids[t + 1];
                _nllOriginal += NegativeLogLikelihood(rowA, target);
                _nllEmitted += NegativeLogLikelihood(rowB, target);
            }
        }
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
    internal static float[] MeanPool(float[] hidden, int sequence, int width)
    {
        var pooled = new float[width];
        for (int t = 0; t < sequence; t++)
            TensorPrimitives.Add(pooled, hidden.AsSpan(t * width, width), pooled);
        TensorPrimitives.Divide(pooled, sequence, pooled);
        return pooled;
    }

    private static double SumSquares(float[] values)
    {
        double sum = 0;
        foreach (var v in values)
            sum += (double)v * v;
        return sum;
    }

    public VerificationReport ToReport()
    {
        long scored = _kind == ModelKind.CausalLm ? _tokens - _samples : 0;
        return new VerificationReport
        {
            Kind = _kind,
            Samples = _samples,
            Tokens = _tokens,
            RelativeError = Math.Sqrt(_diffSquares / Math.Max(_referenceSquares, 1e-300)),
            MaxAbsError = _maxAbs,
            Top1Agreement = _kind == ModelKind.CausalLm && _predictions > 0 ? (double)_agreements / _predictions : null,
            PerplexityOriginal = scored > 0 ? Math.Exp(_nllOriginal / scored) : null,
            PerplexityEmitted = scored > 0 ? Math.Exp(_nllEmitted / scored) : null,
            MeanCosine = _cosines.Count > 0 ? _cosines.Average() : null,
            MinCosine = _cosines.Count > 0 ? _cosines.Min() : null,
        };
    }
}
