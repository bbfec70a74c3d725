using System.Numerics.Tensors;
using OnnxQuant.Analysis;
using OnnxQuant.Awq;
using OnnxQuant.IR;
using OnnxQuant.Numerics;
using OnnxQuant.Quantization;
using OnnxQuant.Smoothing;
using OnnxQuant.Statistics;

namespace OnnxQuant.Advice;

/// <summary>One linear's expected output error under each scheme: ||Yq - Y|| / ||Y|| on the recorded rows.</summary>
public sealed record LinearEstimate(string Name, int K, int N, IReadOnlyDictionary<AdviceScheme, double> Errors);

/// <summary>One activation (a smoothing group) and the linears that read it.</summary>
/// <param name="MaxOverMedian">max over channels of the calibrated max|x|, divided by the channels' median.</param>
/// <param name="Alpha">SmoothQuant's best alpha for the group (null: smoothing does not help it).</param>
public sealed record LayerEstimate(string Activation, float MaxOverMedian, OutlierSeverity Severity, int Rows, float? Alpha,
    IReadOnlyList<LinearEstimate> Linears);

/// <summary>
/// Measures, per group of linears sharing an activation, the output error each <see cref="AdviceScheme"/> gives on the
/// calibration's recorded rows, by fake quantization in C# (no ONNX Runtime): the same quantizers and searches the passes
/// use (<see cref="AlphaSearch"/> for W8A8, <see cref="AwqScaleSearch"/>/<see cref="AwqClipSearch"/> and
/// <see cref="QuantizationError"/> for W4), so the figures are those of the graphs `smooth` and `awq` would emit.
/// </summary>
public static class LayerEstimates
{
    /// <summary>W4 blocks the estimates assume (the `awq` default).</summary>
    public const int BlockSize = 128;

    public static IReadOnlyList<LayerEstimate> Measure(Graph graph, CalibrationStats stats, IReadOnlySet<string> quantizable,
        Action<int, int>? progress = null, CancellationToken cancel = default)
    {
        var groups = SmoothingGroups.Find(graph)
            .Select(g => (Group: g, Consumers: g.Consumers.Where(c => quantizable.Contains(c.Name)).ToList(), Stats: stats.Get(g.Activation)))
            .Where(g => g.Consumers.Count > 0 && g.Stats is { SampleRowCount: > 0 } s && s.Channels == g.Group.Channels)
            .ToList();
        // Group by group (the matrix products inside already use every core), so progress comes in order.
        var results = new List<LayerEstimate>(groups.Count);
        foreach (var (group, consumers, groupStats) in groups)
        {
            cancel.ThrowIfCancellationRequested();
            results.Add(MeasureGroup(graph, group, consumers, groupStats!));
            progress?.Invoke(results.Count, groups.Count);
        }
        return results;
    }

    private static LayerEstimate MeasureGroup(Graph graph, SmoothingGroup group, IReadOnlyList<LinearNode> consumers, ActivationStats stats)
    {
        int k = stats.Channels;
        long totalN = consumers.Sum(c => (long)c.N);
        var x = stats.EvenlySpacedRows(Math.Min(512, AlphaSearch.RowsFor(k, totalN, stats.SampleRowCount)), out int rows);
        var view = MatrixView.Of(x, rows, k);
        var weights = consumers.Select(c => new SearchWeight(c.Name, c.ReadWeightKN(graph), c.K, c.N)).ToList();
        var references = weights.Select(w => MatrixMultiply.Multiply(view, MatrixView.Of(w.KN, k, w.N))).ToList();
        var norms = references.Select(r => Math.Max(TensorPrimitives.SumOfSquares(r), 1e-30)).ToList();
        var weightMax = WeightRowAbsMax(weights, k);

        var errors = consumers.Select(_ => new Dictionary<AdviceScheme, double>()).ToList();
        var staticScheme = new FakeQuantScheme();
        var perToken = new FakeQuantScheme { PerTokenActivations = true };
        for (int i = 0; i < weights.Count; i++)
        {
            errors[i][AdviceScheme.W8A8Naive] = Math.Sqrt(AlphaSearch.Error(x, rows, stats.AbsMax, [weights[i]], [references[i]], null, staticScheme));
            errors[i][AdviceScheme.W8A8PerToken] = Math.Sqrt(AlphaSearch.Error(x, rows, stats.AbsMax, [weights[i]], [references[i]], null, perToken));
        }

        // SmoothQuant as `smooth` searches it: alpha per group, with up to 4 channels computed in float (the int8 default).
        var smoothScheme = new FakeQuantScheme { MaxFloatChannels = 4 };
        var choice = AlphaSearch.Run(x, rows, stats.AbsMax, weights, weightMax, smoothScheme);
        float[]? s = null;
        if (choice.Alpha is { } alpha)
        {
            var activationMax = (float[])stats.AbsMax.Clone();
            foreach (int j in choice.FloatChannels)
                activationMax[j] = 0;
            s = SmoothQuantScales.Compute(activationMax, weightMax, alpha);
        }
        for (int i = 0; i < weights.Count; i++)
            errors[i][AdviceScheme.W8A8SmoothQuant] = Math.Sqrt(AlphaSearch.Error(x, rows, stats.AbsMax, [weights[i]], [references[i]], s, smoothScheme, choice.FloatChannels));

        // W4: RTN, then AWQ's scale search on the group's outputs and the clip search (not on query/key projections).
        var options = new AwqOptions { Quantization = new Int4QuantOptions { BlockSize = BlockSize } };
        for (int i = 0; i < weights.Count; i++)
            errors[i][AdviceScheme.W4Rtn] = Math.Sqrt(QuantizationError.SquaredError(view, weights[i].KN, weights[i].N, [], options.Quantization) / norms[i]);
        var awqWeights = weights.Select(w => new AwqWeight(w.Name, w.KN, w.N)).ToList();
        var scales = AwqScaleSearch.Search(view, stats.MeanAbs, awqWeights, options, constrain: group.Ties is { } ties ? ties.GeometricMean : null).Scales;
        var scaledRows = new float[x.Length];
        for (int r = 0; r < rows; r++)
            TensorPrimitives.Divide(x.AsSpan(r * k, k), scales, scaledRows.AsSpan(r * k, k));
        var scaledView = MatrixView.Of(scaledRows, rows, k);
        for (int i = 0; i < weights.Count; i++)
        {
            var w = weights[i];
            float[] ratios = [];
            if (!AttentionRoles.IsQueryOrKey(graph, consumers[i]))
            {
                var scaled = (float[])w.KN.Clone();
                for (int j = 0; j < k; j++)
                    TensorPrimitives.Multiply(scaled.AsSpan(j * w.N, w.N), scales[j], scaled.AsSpan(j * w.N, w.N));
                ratios = AwqClipSearch.Search(scaledView, scaled, w.N, options).Ratios;
            }
            errors[i][AdviceScheme.W4Awq] = Math.Sqrt(QuantizationError.SquaredError(view, w.KN, w.N, scales, options.Quantization, ratios) / norms[i]);
        }

        float ratio = stats.MaxOverMedian();
        var linears = consumers.Select((c, i) => new LinearEstimate(c.Name, c.K, c.N, errors[i])).ToList();
        return new LayerEstimate(group.Activation, ratio, AdviceSchemes.Severity(ratio), rows, choice.Alpha, linears);
    }

    // Per input channel j, max |W[j, :]| over every consumer: the weight side of SmoothQuant's balance.
    private static float[] WeightRowAbsMax(IReadOnlyList<SearchWeight> weights, int k)
    {
        var max = new float[k];
        foreach (var w in weights)
            for (int j = 0; j < k; j++)
                max[j] = MathF.Max(max[j], TensorPrimitives.MaxMagnitude(w.KN.AsSpan(j * w.N, w.N)) is var m ? MathF.Abs(m) : 0);
        return max;
    }
}
