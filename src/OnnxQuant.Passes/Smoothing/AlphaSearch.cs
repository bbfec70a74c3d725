using System.Numerics.Tensors;
using OnnxQuant.Quantization;

namespace OnnxQuant.Smoothing;

/// <summary>How the W8A8 graph will quantize, so the search measures the error the emitted model will have.</summary>
public sealed record FakeQuantScheme
{
    /// <summary>Per-token scales computed at run time; otherwise one static per-tensor scale from the calibrated max.</summary>
    public bool PerTokenActivations { get; init; }

    /// <summary>7-bit weights (±63) instead of ±127.</summary>
    public bool ReducedRangeWeights { get; init; }
}

/// <summary>A consumer's logical [K, N] weight as the search sees it.</summary>
public sealed record SearchWeight(string Name, float[] KN, int K, int N);

/// <summary>The outcome of an alpha search: the chosen alpha (null: smoothing does not help this group) and the loss curve.</summary>
public sealed record AlphaChoice(float? Alpha, double Error, double UnsmoothedError, IReadOnlyList<(float Alpha, double Error)> Curve);

/// <summary>
/// Chooses SmoothQuant's alpha for one group by a grid search: for each candidate, s from the calibrated maxima, the
/// recorded activation rows divided by s and fake-quantized as the W8A8 graph will (static per-tensor or per-token), each
/// consumer's weight multiplied by s and fake-quantized per output channel; the loss is the sum over consumers of the
/// relative squared error of the output against the unquantized product. "No smoothing" competes too.
/// </summary>
public static class AlphaSearch
{
    /// <summary>0.30, 0.35, ..., 0.95.</summary>
    public static IReadOnlyList<float> DefaultGrid { get; } = Enumerable.Range(0, 14).Select(i => MathF.Round(0.30f + 0.05f * i, 2)).ToArray();

    /// <summary>Most rows replayed per group; fewer when the weights are large, so one group stays around a second.</summary>
    public static int RowsFor(int k, long totalN, int available, long macBudget = 150_000_000L) =>
        (int)Math.Min(available, Math.Max(128, macBudget / Math.Max(1, k * totalN)));

    public static AlphaChoice Run(ReadOnlySpan<float> rows, int rowCount, ReadOnlySpan<float> activationAbsMax, IReadOnlyList<SearchWeight> weights,
        ReadOnlySpan<float> weightRowAbsMax, FakeQuantScheme scheme, IReadOnlyList<float>? grid = null, bool allowNoSmoothing = true)
    {
        int k = activationAbsMax.Length;
        if (rowCount <= 0 || rows.Length != (long)rowCount * k)
            throw new ArgumentException($"alpha search: {rows.Length} row values for {rowCount} rows of {k} channels");
        var x = rows.ToArray();
        var absMax = activationAbsMax.ToArray();
        var references = weights.Select(w => RowMatMul.Multiply(x, rowCount, k, w.KN, w.N)).ToList();
        double unsmoothed = Error(x, rowCount, absMax, weights, references, null, scheme);
        var curve = new List<(float, double)>();
        float? best = null;
        double bestError = allowNoSmoothing ? unsmoothed : double.PositiveInfinity;
        foreach (float alpha in grid ?? DefaultGrid)
        {
            var s = SmoothQuantScales.Compute(absMax, weightRowAbsMax, alpha);
            double e = Error(x, rowCount, absMax, weights, references, s, scheme);
            curve.Add((alpha, e));
            if (e < bestError)
            {
                bestError = e;
                best = alpha;
            }
        }
        return new AlphaChoice(best, bestError, unsmoothed, curve);
    }

    /// <summary>Sum over consumers of ||Yq - Y||² / ||Y||² with smoothing <paramref name="scale"/> (null: none).</summary>
    public static double Error(float[] rows, int rowCount, float[] absMax, IReadOnlyList<SearchWeight> weights, IReadOnlyList<float[]> references,
        float[]? scale, FakeQuantScheme scheme)
    {
        int k = absMax.Length;
        var x = (float[])rows.Clone();
        if (scale is not null)
            for (int r = 0; r < rowCount; r++)
                TensorPrimitives.Divide(x.AsSpan(r * k, k), scale, x.AsSpan(r * k, k));
        if (scheme.PerTokenActivations)
            Int8Quantizer.FakeQuantizeActivationsPerToken(x, rowCount, k);
        else
        {
            float max = scale is null ? TensorPrimitives.Max(absMax) : TensorPrimitives.Max(SmoothQuantScales.Divide(absMax, scale));
            Int8Quantizer.FakeQuantizeActivationsPerTensor(x, Int8Quantizer.QuantizeActivationScale(max));
        }
        double total = 0;
        for (int i = 0; i < weights.Count; i++)
        {
            var w = weights[i];
            var wq = (float[])w.KN.Clone();
            if (scale is not null)
                for (int j = 0; j < w.K; j++)
                    TensorPrimitives.Multiply(wq.AsSpan(j * w.N, w.N), scale[j], wq.AsSpan(j * w.N, w.N));
            Int8Quantizer.FakeQuantizeWeightsPerChannel(wq, w.K, w.N, scheme.ReducedRangeWeights);
            var y = RowMatMul.Multiply(x, rowCount, k, wq, w.N);
            var reference = references[i];
            double norm = TensorPrimitives.SumOfSquares(reference);
            TensorPrimitives.Subtract(y, reference, y);
            total += TensorPrimitives.SumOfSquares(y) / Math.Max(norm, 1e-30);
        }
        return total;
    }
}
