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
    private (string Activation, float[]? Scales, HessianFactor Factor)? _last;

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
        if (_rounding == WeightRounding.Rtn || FactorFor(linear) is not { } factor)
            return bits == 4
                ? Int4BlockQuantizer.Quantize(weight, linear.K, linear.N, options)
                : GptqQuantizer.Quantize(weight, linear.K, linear.N, null, options, bits);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var result = GptqQuantizer.Quantize(weight, linear.K, linear.N, factor, options, bits, _gptq.LazyBlock);
        GptqSeconds += clock.Elapsed.TotalSeconds;
        usedGptq = true;
        return result;
    }

    private HessianFactor? FactorFor(LinearNode linear)
    {
        // The same input: the same calibrated activation, divided by the same scales (one array per AWQ group).
        var (activation, scales) = _rescaling.Linears.TryGetValue(linear.Name, out var rescaled)
            ? (rescaled.Activation, rescaled.Scales)
            : (linear.Activation, (float[]?)null);
        if (_last is { } last && last.Activation == activation && ReferenceEquals(last.Scales, scales) && last.Factor.K == linear.K)
            return last.Factor;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var rows = InputRows(linear, _split, out int count);
        if (rows is null)
            return null;
        var factor = HessianFactor.FromRows(MatrixView.Of(rows, count, linear.K), _gptq);
        GptqSeconds += clock.Elapsed.TotalSeconds;
        _last = (activation, scales, factor);
        return factor;
    }
}
