using System.Numerics.Tensors;
using OnnxQuant.Numerics;
using OnnxQuant.Quantization;

namespace OnnxQuant.Smoothing;

/// <summary>How the W8A8 graph will quantize, so the search measures the error the emitted model will have.</summary>
public sealed record FakeQuantScheme
{
    /// <summary>Per-token scales computed at run time; otherwise one static per-tensor scale from the calibrated max.</summary>
    public bool PerTokenActivations { get; init; }

    /// <summary>7-bit weights (±63) instead of ±127.</summary>
    public bool ReducedRangeWeights { get; init; }

    /// <summary>
    /// Most channels per activation the graph may compute in floating point beside the int8 product (0: none). The
    /// search keeps some only where smoothing alone leaves at least twice their error.
    /// </summary>
    public int MaxFloatChannels { get; init; }

    /// <summary>
    /// LLM.int8()'s rule (--float-outliers): every channel whose calibrated max |x| exceeds this stays in floating point,
    /// however many there are and whatever they save; replaces the <see cref="MaxFloatChannels"/> trial. Null: off.
    /// </summary>
    public float? OutlierThreshold { get; init; }

    /// <summary>The channels <see cref="OutlierThreshold"/> keeps in float for these maxima, ascending (empty when off).</summary>
    public int[] OutlierChannels(ReadOnlySpan<float> absMax)
    {
        if (OutlierThreshold is not { } t)
            return [];
        var channels = new List<int>();
        for (int j = 0; j < absMax.Length; j++)
            if (absMax[j] > t)
                channels.Add(j);
        return channels.ToArray();
    }
}

/// <summary>A consumer's logical [K, N] weight as the search sees it.</summary>
public sealed record SearchWeight(string Name, float[] KN, int K, int N);

/// <summary>
/// The outcome of an alpha search: the chosen alpha (null: smoothing does not help this group), the channels to keep in
/// floating point (empty for none), the loss of that choice and of no smoothing, and the loss curve of the chosen channel set.
/// </summary>
public sealed record AlphaChoice(float? Alpha, double Error, double UnsmoothedError, IReadOnlyList<(float Alpha, double Error)> Curve)
{
    public IReadOnlyList<int> FloatChannels { get; init; } = [];
}

/// <summary>
/// Chooses SmoothQuant's alpha for one group by a search over a grid (every point by default; golden-section narrowing,
/// <see cref="BracketSearch"/>, with <c>bracketed: true</c>, see docs/architecture.md, "Search cost"): for each candidate, s from the calibrated maxima, the
/// recorded activation rows divided by s and fake-quantized as the W8A8 graph will (static per-tensor or per-token), each
/// consumer's weight multiplied by s and fake-quantized per output channel; the loss is the sum over consumers of the
/// relative squared error of the output against the unquantized product. "No smoothing" competes too. With float
/// channels allowed, the channels of largest max|x|·max|w| are tried out of the int8 product (1, 2, 4 of them).
/// </summary>
public static class AlphaSearch
{
    /// <summary>0.30, 0.35, ..., 0.95.</summary>
    public static IReadOnlyList<float> DefaultGrid { get; } = Enumerable.Range(0, 14).Select(i => MathF.Round(0.30f + 0.05f * i, 2)).ToArray();

    /// <summary>A float-channel set is kept only when it at least divides the best int8-only loss by this.</summary>
    public const double FloatChannelGain = 2.0;

    /// <summary>A consumer's weight with only every <paramref name="stride"/>-th column (<see cref="ColumnSample"/>).</summary>
    public static SearchWeight SampleColumns(SearchWeight weight, int stride) =>
        stride <= 1 ? weight : weight with { KN = ColumnSample.Take(weight.KN, weight.K, weight.N, stride, out int n), N = n };

    /// <summary>Most rows replayed per group; fewer when the weights are large, so one group stays around a second.</summary>
    public static int RowsFor(int k, long totalN, int available, long macBudget = 150_000_000L) =>
        (int)Math.Min(available, Math.Max(128, macBudget / Math.Max(1, k * totalN)));

    public static AlphaChoice Run(ReadOnlySpan<float> rows, int rowCount, ReadOnlySpan<float> activationAbsMax, IReadOnlyList<SearchWeight> weights,
        ReadOnlySpan<float> weightRowAbsMax, FakeQuantScheme scheme, IReadOnlyList<float>? grid = null, bool allowNoSmoothing = true,
        bool bracketed = false)
    {
        int k = activationAbsMax.Length;
        if (rowCount <= 0 || rows.Length != (long)rowCount * k)
            throw new ArgumentException($"alpha search: {rows.Length} row values for {rowCount} rows of {k} channels");
        var x = rows.ToArray();
        var absMax = activationAbsMax.ToArray();
        var wMax = weightRowAbsMax.ToArray();
        var references = weights.Select(w => MatrixMultiply.Multiply(MatrixView.Of(x, rowCount, k), MatrixView.Of(w.KN, k, w.N))).ToList();
        var outliers = scheme.OutlierThreshold is null || scheme.PerTokenActivations ? [] : scheme.OutlierChannels(absMax);
        if (outliers.Length > 0 && outliers.Length < k)
        {
            // The threshold decides the float channels; the search only picks alpha for the rest. The int8-only loss is
            // kept as the "unsmoothed" reference so the report shows what the float channels and smoothing saved together.
            var int8Only = Grid(x, rowCount, absMax, wMax, weights, references, [], scheme, [], allowNoSmoothing: true, bracketed: false);
            var chosen = Grid(x, rowCount, absMax, wMax, weights, references, outliers, scheme, grid ?? DefaultGrid, allowNoSmoothing, bracketed);
            return chosen with { UnsmoothedError = int8Only.UnsmoothedError };
        }
        var best = Grid(x, rowCount, absMax, wMax, weights, references, [], scheme, grid ?? DefaultGrid, allowNoSmoothing, bracketed);
        if (scheme.OutlierThreshold is not null || scheme.MaxFloatChannels <= 0 || scheme.PerTokenActivations)
            return best;

        var ranked = Enumerable.Range(0, k).OrderByDescending(j => (double)absMax[j] * wMax[j]).ToArray();
        // Taking channels out only lets the rest smooth harder: try alphas from a little below the int8-only optimum up.
        float floor = (best.Alpha ?? 0f) - 0.15f;
        var upper = (grid ?? DefaultGrid).Where(a => a >= floor - 1e-4f).ToList();
        AlphaChoice? split = null;
        foreach (int count in new[] { 1, 2, 4 }.Where(c => c <= scheme.MaxFloatChannels && c < k))
        {
            var choice = Grid(x, rowCount, absMax, wMax, weights, references, ranked.Take(count).Order().ToArray(), scheme, upper, allowNoSmoothing, bracketed);
            // Fewer float channels win unless more of them clearly help.
            if (split is null || choice.Error * 1.25 < split.Error)
                split = choice;
        }
        return split is not null && split.Error * FloatChannelGain <= best.Error ? split with { UnsmoothedError = best.UnsmoothedError } : best;
    }

    private static AlphaChoice Grid(float[] x, int rowCount, float[] absMax, float[] wMax, IReadOnlyList<SearchWeight> weights,
        IReadOnlyList<float[]> references, int[] floatChannels, FakeQuantScheme scheme, IReadOnlyList<float> grid, bool allowNoSmoothing, bool bracketed)
    {
        var targets = floatChannels.Length == 0 ? references : IntegerShare(x, rowCount, absMax.Length, weights, references, floatChannels);
        double unsmoothed = Error(x, rowCount, absMax, weights, references, null, scheme, floatChannels, targets);
        var curve = new List<(float, double)>();
        float? best = null;
        double bestError = allowNoSmoothing ? unsmoothed : double.PositiveInfinity;
        var rest = Without(absMax, floatChannels);
        var restW = Without(wMax, floatChannels);
        double Loss(int i) => Error(x, rowCount, absMax, weights, references, SmoothQuantScales.Compute(rest, restW, grid[i]), scheme, floatChannels, targets);
        double[] losses;
        if (bracketed && grid.Count > 0)
        {
            losses = BracketSearch.Minimize(grid.Count, Loss).Losses;
        }
        else
        {
            losses = new double[grid.Count];
            for (int i = 0; i < grid.Count; i++) losses[i] = Loss(i);
        }
        for (int i = 0; i < grid.Count; i++)
        {
            if (double.IsNaN(losses[i]))
                continue; // not evaluated by the bracketing search
            curve.Add((grid[i], losses[i]));
            if (losses[i] < bestError)
                (bestError, best) = (losses[i], grid[i]);
        }
        return new AlphaChoice(best, bestError, unsmoothed, curve) { FloatChannels = floatChannels };
    }

    // Y minus the float channels' exact share X[:, O] · W[O, :]: what the int8 product must match. Smoothing leaves it
    // unchanged (the float channels get s = 1), so it is computed once per channel set.
    private static IReadOnlyList<float[]> IntegerShare(float[] x, int rowCount, int k, IReadOnlyList<SearchWeight> weights,
        IReadOnlyList<float[]> references, int[] floatChannels)
    {
        var result = new List<float[]>();
        for (int i = 0; i < weights.Count; i++)
        {
            var w = weights[i];
            var share = (float[])references[i].Clone();
            for (int r = 0; r < rowCount; r++)
                foreach (int j in floatChannels)
                {
                    float xv = x[r * k + j];
                    if (xv != 0)
                        TensorPrimitives.MultiplyAdd(w.KN.AsSpan(j * w.N, w.N), -xv, share.AsSpan(r * w.N, w.N), share.AsSpan(r * w.N, w.N));
                }
            result.Add(share);
        }
        return result;
    }

    // A copy with the float channels zeroed (SmoothQuantScales gives them s = 1).
    private static float[] Without(float[] values, int[] channels)
    {
        var copy = (float[])values.Clone();
        foreach (int j in channels)
            copy[j] = 0;
        return copy;
    }

    /// <summary>
    /// Sum over consumers of ||Yq - Y||² / ||Y||² with smoothing <paramref name="scale"/> (null: none). Float channels are
    /// exact: they leave the int8 product (zero activation and weight row) and its static scale; <paramref name="targets"/>
    /// are then the references without their share.
    /// </summary>
    public static double Error(float[] rows, int rowCount, float[] absMax, IReadOnlyList<SearchWeight> weights, IReadOnlyList<float[]> references,
        float[]? scale, FakeQuantScheme scheme, IReadOnlyList<int>? floatChannels = null, IReadOnlyList<float[]>? targets = null)
    {
        int k = absMax.Length;
        var split = floatChannels ?? [];
        targets ??= split.Count > 0 ? IntegerShare(rows, rowCount, k, weights, references, split.ToArray()) : references;
        var x = (float[])rows.Clone();
        var max = (float[])absMax.Clone();
        if (scale is not null)
        {
            for (int r = 0; r < rowCount; r++)
                TensorPrimitives.Divide(x.AsSpan(r * k, k), scale, x.AsSpan(r * k, k));
            TensorPrimitives.Divide(max, scale, max);
        }
        foreach (int j in split)
        {
            max[j] = 0;
            for (int r = 0; r < rowCount; r++) x[r * k + j] = 0;
        }
        if (scheme.PerTokenActivations)
            Int8Quantizer.FakeQuantizeActivationsPerToken(x, rowCount, k);
        else
            Int8Quantizer.FakeQuantizeActivationsPerTensor(x, Int8Quantizer.QuantizeActivationScale(TensorPrimitives.Max(max)));
        double total = 0;
        for (int i = 0; i < weights.Count; i++)
        {
            var w = weights[i];
            var wq = (float[])w.KN.Clone();
            if (scale is not null)
                ParallelWork.For(w.K, wq.Length, j => TensorPrimitives.Multiply(wq.AsSpan(j * w.N, w.N), scale[j], wq.AsSpan(j * w.N, w.N)));
            foreach (int j in split)
                wq.AsSpan(j * w.N, w.N).Clear();
            // The float channels' share of the output is computed without error; the int8 product must match the rest.
            var target = targets[i];
            Int8Quantizer.FakeQuantizeWeightsPerChannel(wq, w.K, w.N, scheme.ReducedRangeWeights);
            var y = MatrixMultiply.Multiply(MatrixView.Of(x, rowCount, k), MatrixView.Of(wq, k, w.N));
            double norm = TensorPrimitives.SumOfSquares(references[i]);
            TensorPrimitives.Subtract(y, target, y);
            total += TensorPrimitives.SumOfSquares(y) / Math.Max(norm, 1e-30);
        }
        return total;
    }
}
