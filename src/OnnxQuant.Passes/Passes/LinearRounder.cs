using System.Numerics.Tensors;
using OnnxQuant.Analysis;
using OnnxQuant.Gptq;
using OnnxQuant.IR;
using OnnxQuant.Numerics;
using OnnxQuant.Quantization;
using OnnxQuant.Statistics;

namespace OnnxQuant.Passes;

/// <summary>How a linear's weights are rounded to their block grid.</summary>
public enum WeightRounding
{
    /// <summary>Round to nearest, each weight on its own.</summary>
    Rtn,
    /// <summary>GPTQ: rounding errors compensated on the not-yet-rounded inputs through H = XᵀX of the calibration rows.</summary>
    Gptq,
}

/// <summary>Which of a linear's calibration rows a step uses: mixed precision holds every fourth back to measure on.</summary>
public enum RowSplit
{
    All,
    /// <summary>Rows r with r % 4 != 3: what GPTQ's H is built from when some rows are held out.</summary>
    Fit,
    /// <summary>Rows r with r % 4 == 3: where mixed precision measures each choice's output error.</summary>
    HeldOut,
}

/// <summary>
/// Rounds one linear's weight at 4 or 8 bits, round-to-nearest or GPTQ, from the calibrated rows of its input as the
/// linear now sees it (divided by AWQ's scales where AWQ scaled it: <see cref="InputRescaling"/>). Keeps the last H
/// factor, so consecutive linears reading the same input (q, k, v; gate, up) factor it once; memory stays at one
/// K x K factor at a time.
/// </summary>
public sealed class LinearRounder
{
    private readonly WeightRounding _rounding;
    private readonly GptqOptions _gptq;
    private readonly CalibrationStats? _stats;
    private readonly InputRescaling _rescaling;
    private readonly RowSplit _split;
    private InputCache? _cache;
    private readonly Dictionary<string, float> _dampening = new(StringComparer.Ordinal);

    public LinearRounder(WeightRounding rounding, GptqOptions gptq, CalibrationStats? stats, InputRescaling? rescaling, RowSplit split)
    {
        _rounding = rounding;
        _gptq = gptq;
        _stats = stats;
        _rescaling = rescaling ?? InputRescaling.None;
        _split = split;
    }

    /// <summary>Seconds spent building and factoring H and in GPTQ's rounding.</summary>
    public double GptqSeconds { get; private set; }

    /// <summary>The rows of the linear's input as it reads them now ([count, K]), or null when none were recorded.</summary>
    public float[]? InputRows(LinearNode linear, RowSplit split, out int count)
    {
        count = 0;
        string activation = linear.Activation;
        float[]? scales = null;
        if (_rescaling.Linears.TryGetValue(linear.Name, out var rescaled))
            (activation, scales) = (rescaled.Activation, rescaled.Scales);
        var stats = _stats?.Get(activation);
        if (stats is null || stats.Channels != linear.K || stats.SampleRowCount == 0)
            return null;
        var selected = Enumerable.Range(0, stats.SampleRowCount).Where(r => split switch
        {
            RowSplit.Fit => r % 4 != 3,
            RowSplit.HeldOut => r % 4 == 3,
            _ => true,
        }).ToList();
        if (selected.Count == 0)
            return null;
        int k = linear.K;
        var rows = new float[(long)selected.Count * k];
        for (int i = 0; i < selected.Count; i++)
        {
            var dst = rows.AsSpan(i * k, k);
            if (scales is null)
                stats.SampleRow(selected[i]).CopyTo(dst);
            else
                TensorPrimitives.Divide(stats.SampleRow(selected[i]), scales, dst);
        }
        count = selected.Count;
        return rows;
    }

    /// <summary>
    /// The weight ([K, N]) rounded at <paramref name="bits"/> with the grid of <paramref name="options"/>. GPTQ falls back
    /// to round-to-nearest (and says so through <paramref name="usedGptq"/>) when the input has no calibration rows.
    /// </summary>
    public QuantizedBlocks Quantize(LinearNode linear, float[] weight, int bits, Int4QuantOptions options, out bool usedGptq)
    {
        usedGptq = false;
        if (_rounding == WeightRounding.Rtn || !HasRows(linear))
            return Rtn(linear, weight, bits, options);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        float damp = _gptq.Dampening;
        if (_gptq.AutoDampening && !_dampening.TryGetValue(linear.Name, out damp))
            _dampening[linear.Name] = damp = ChooseDampening(linear, weight, bits, options);
        var factor = FactorFor(linear, _split, damp)!;
        var result = GptqQuantizer.Quantize(weight, linear.K, linear.N, factor, options, bits, _gptq.LazyBlock);
        GptqSeconds += clock.Elapsed.TotalSeconds;
        usedGptq = true;
        return result;
    }

    /// <summary>The dampening each GPTQ-rounded linear got: the option's, or with auto dampening the one chosen for it.</summary>
    public float DampeningOf(string linear) => _dampening.TryGetValue(linear, out float d) ? d : _gptq.Dampening;

    private static QuantizedBlocks Rtn(LinearNode linear, float[] weight, int bits, Int4QuantOptions options) => bits == 4
        ? Int4BlockQuantizer.Quantize(weight, linear.K, linear.N, options)
        : GptqQuantizer.Quantize(weight, linear.K, linear.N, null, options, bits);

    private bool HasRows(LinearNode linear) => Input(linear) is var (activation, _) && _stats?.Get(activation) is { } s
        && s.Channels == linear.K && s.SampleRowCount > 0;

    // The input as the linear reads it: the calibrated activation, and AWQ's divisor when AWQ scaled it.
    private (string Activation, float[]? Scales) Input(LinearNode linear) =>
        _rescaling.Linears.TryGetValue(linear.Name, out var rescaled) ? (rescaled.Activation, rescaled.Scales) : (linear.Activation, null);

    // Fewer held-out rows than this measure too little to choose by.
    private const int MinHeldOutRows = 16;

    /// <summary>
    /// The dampening among <see cref="GptqOptions.DampeningChoices"/> whose rounding (H from the fitting rows) has the
    /// least output error on the held-out rows, at the bits and blocks of the first call (a bits plan asks for 4 bits
    /// with the rewrite's blocks first); the option's own when too few rows were recorded to hold some out.
    /// </summary>
    private float ChooseDampening(LinearNode linear, float[] weight, int bits, Int4QuantOptions options)
    {
        var heldOut = InputRows(linear, RowSplit.HeldOut, out int count);
        if (heldOut is null || count < MinHeldOutRows)
            return _gptq.Dampening;
        var x = MatrixView.Of(heldOut, count, linear.K);
        float best = _gptq.Dampening;
        double bestError = double.PositiveInfinity;
        foreach (float candidate in GptqOptions.DampeningChoices)
        {
            var delta = GptqQuantizer.Quantize(weight, linear.K, linear.N, FactorFor(linear, RowSplit.Fit, candidate), options, bits, _gptq.LazyBlock).Dequantize();
            TensorPrimitives.Subtract(weight, delta, delta);
            double error = TensorPrimitives.SumOfSquares(MatrixMultiply.Multiply(x, MatrixView.Of(delta, linear.K, linear.N)));
            if (error < bestError)
                (best, bestError) = (candidate, error);
        }
        return best;
    }

    // H and its factors for the input the last call read (q, k and v share one input; gate and up another): H per row
    // split, a factor per (split, dampening). Dropped when the input changes, so memory stays at one input's worth.
    private HessianFactor? FactorFor(LinearNode linear, RowSplit split, float damp)
    {
        var (activation, scales) = Input(linear);
        if (_cache is not { } cache || cache.Activation != activation || !ReferenceEquals(cache.Scales, scales) || cache.K != linear.K)
            _cache = cache = new InputCache(activation, scales, linear.K);
        if (cache.Factors.TryGetValue((split, damp), out var factor))
            return factor;
        if (!cache.Hessians.TryGetValue(split, out var hessian))
        {
            var rows = InputRows(linear, split, out int count);
            if (rows is null)
                return null;
            cache.Hessians[split] = hessian = HessianFactor.SecondMoment(MatrixView.Of(rows, count, linear.K));
        }
        factor = HessianFactor.Factor(hessian, linear.K, _gptq with { Dampening = damp });
        cache.Factors[(split, damp)] = factor;
        return factor;
    }

    private sealed record InputCache(string Activation, float[]? Scales, int K)
    {
        public Dictionary<RowSplit, float[]> Hessians { get; } = [];
        public Dictionary<(RowSplit, float), HessianFactor> Factors { get; } = [];
    }
}
