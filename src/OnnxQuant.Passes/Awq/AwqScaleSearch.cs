using System.Numerics.Tensors;
using OnnxQuant.Numerics;

namespace OnnxQuant.Awq;

/// <summary>One weight that reads the group's activation: its name (for reports) and its logical [K, N] values.</summary>
public sealed record AwqWeight(string Name, float[] Values, int N);

/// <summary>What the scale search found for one group.</summary>
/// <param name="Scales">s [K]: divide the activation's channel j by s_j, multiply the weights' row j by s_j.</param>
/// <param name="Ratio">The exponent r of the best grid point (0 means s = 1: AWQ could not beat round-to-nearest).</param>
/// <param name="RtnLoss">Mean squared output error of plain RTN on the rows (the r = 0 point).</param>
/// <param name="BestLoss">Mean squared output error with the chosen s.</param>
public sealed record AwqScaleResult(float[] Scales, float Ratio, double RtnLoss, double BestLoss, IReadOnlyList<double> Losses);

/// <summary>
/// AWQ's search for one smoothing group (consumers sharing an input): candidate scales s = mean|X_j|^r (optionally
/// divided by mean|W_j|^(1-r)), normalised so sqrt(max s * min s) = 1, for r on a grid; the loss is the output error of
/// every consumer on the recorded rows (the group-output loss), or a caller-supplied loss such as a block's output.
/// </summary>
public static class AwqScaleSearch
{
    /// <summary>Floors the statistics so a dead channel gets a finite scale instead of 0 or infinity.</summary>
    private const float Floor = 1e-4f;

    /// <param name="rows">Recorded activation rows X [R, K].</param>
    /// <param name="meanAbs">Per-channel mean |X| over the whole calibration set (not just the recorded rows).</param>
    /// <param name="loss">
    /// The loss of a candidate s (null: the group-output loss, summed over consumers). A block loss plugs in here.
    /// </param>
    /// <param name="constrain">Makes a candidate foldable (channels tied by a KV repeat share one s); null: any s folds.</param>
    /// <param name="weightMeans">
    /// Duo scaling's <see cref="NormalisedWeightMeans"/> of the whole weights, when <paramref name="consumers"/> are a
    /// column sample of them (null: computed from <paramref name="consumers"/>).
    /// </param>
    public static AwqScaleResult Search(MatrixView rows, ReadOnlySpan<float> meanAbs, IReadOnlyList<AwqWeight> consumers, AwqOptions options,
        Func<float[], double>? loss = null, CancellationToken cancel = default, Func<float[], float[]>? constrain = null, float[]? weightMeans = null)
    {
        options.Validate();
        int k = rows.Cols;
        if (meanAbs.Length != k)
            throw new ArgumentException($"{meanAbs.Length} channel means for K = {k}");
        if (consumers.Count == 0)
            throw new ArgumentException("a smoothing group needs at least one consumer");
        long outputs = (long)rows.Rows * consumers.Sum(c => c.N);
        loss ??= s => GroupOutputLoss(rows, consumers, s, options) / outputs;

        var x = new float[k];
        for (int j = 0; j < k; j++) x[j] = MathF.Max(meanAbs[j], Floor);
        float[]? w = options.DuoScaling ? weightMeans ?? NormalisedWeightMeans(consumers, k, options.Quantization.BlockSize) : null;

        float[] Candidate(int i)
        {
            if (i == 0)
                return Ones(k);
            var s = CandidateScales(x, w, (float)i / options.GridPoints);
            return constrain is null ? s : constrain(s);
        }
        double Loss(int i)
        {
            cancel.ThrowIfCancellationRequested();
            return loss(Candidate(i));
        }
        // r = 0 (plain RTN) is always measured: it is the baseline the report compares against.
        var (index, losses) = options.BracketedGrid
            ? BracketSearch.Minimize(options.GridPoints, Loss, always: 0)
            : FullGrid(options.GridPoints, Loss);
        // The candidate is recomputed rather than kept from the search: cheap next to one loss, and nothing to hold.
        float[] best = Candidate(index);
        float bestRatio = (float)index / options.GridPoints;
        double bestLoss = losses[index];
        return new AwqScaleResult(best, bestRatio, losses[0], bestLoss, losses);
    }

    private static (int Best, double[] Losses) FullGrid(int count, Func<int, double> loss)
    {
        var losses = new double[count];
        int best = 0;
        for (int i = 0; i < count; i++)
        {
            losses[i] = loss(i);
            if (losses[i] < losses[best])
                best = i;
        }
        return (best, losses);
    }

    /// <summary>Sum over consumers of the squared output error with scales s (all ones: RTN).</summary>
    public static double GroupOutputLoss(MatrixView rows, IReadOnlyList<AwqWeight> consumers, float[] s, AwqOptions options)
    {
        bool identity = TensorPrimitives.MinMagnitude(s) == 1f && TensorPrimitives.MaxMagnitude(s) == 1f;
        double total = 0;
        foreach (var c in consumers)
            total += QuantizationError.SquaredError(rows, c.Values, c.N, identity ? default : s, options.Quantization);
        return total;
    }

    /// <summary>s_j = x_j^r (/ w_j^(1-r)), normalised by sqrt(max s * min s) so the scales straddle 1.</summary>
    public static float[] CandidateScales(ReadOnlySpan<float> x, ReadOnlySpan<float> w, float r)
    {
        var s = new float[x.Length];
        TensorPrimitives.Pow(x, r, s);
        if (!w.IsEmpty)
        {
            var denominator = new float[x.Length];
            TensorPrimitives.Pow(w, 1f - r, denominator);
            TensorPrimitives.Divide(s, denominator, s);
            TensorPrimitives.Max(s, Floor, s);
        }
        float norm = MathF.Sqrt(TensorPrimitives.Max(s) * TensorPrimitives.Min(s));
        TensorPrimitives.Divide(s, norm, s);
        return s;
    }

    /// <summary>
    /// Per input channel, the mean over every consumer's columns of |W[j, n]| / max|W[block(j), n]| (AutoAWQ's weight
    /// statistic for duo scaling), floored.
    /// </summary>
    public static float[] NormalisedWeightMeans(IReadOnlyList<AwqWeight> consumers, int k, int blockSize)
    {
        var sums = new double[k];
        foreach (var c in consumers)
            AddNormalisedWeightSums(c.Values, c.N, blockSize, sums);
        return MeansFromSums(sums, consumers.Sum(c => (long)c.N));
    }

    /// <summary>Adds one [K, N] weight's Σ_n |W[j, n]| / max|W[block(j), n]| to <paramref name="sums"/> (a weight at a time, so the others need not be held).</summary>
    public static void AddNormalisedWeightSums(float[] values, int n, int blockSize, double[] sums)
    {
        int k = sums.Length;
        var blockMax = new float[n];
        var row = new float[n];
        for (int g0 = 0; g0 < k; g0 += blockSize)
        {
            int g1 = Math.Min(k, g0 + blockSize);
            blockMax.AsSpan().Clear();
            for (int j = g0; j < g1; j++)
            {
                TensorPrimitives.Abs(values.AsSpan(j * n, n), row);
                TensorPrimitives.Max(blockMax, row, blockMax);
            }
            TensorPrimitives.Max(blockMax, 1e-12f, blockMax);
            for (int j = g0; j < g1; j++)
            {
                TensorPrimitives.Abs(values.AsSpan(j * n, n), row);
                TensorPrimitives.Divide(row, blockMax, row);
                sums[j] += TensorPrimitives.Sum(row);
            }
        }
    }

    /// <summary>The floored means of sums over <paramref name="columns"/> columns in all.</summary>
    public static float[] MeansFromSums(double[] sums, long columns)
    {
        var means = new float[sums.Length];
        for (int j = 0; j < sums.Length; j++) means[j] = MathF.Max((float)(sums[j] / columns), Floor);
        return means;
    }

    private static float[] Ones(int k)
    {
        var s = new float[k];
        s.AsSpan().Fill(1f);
        return s;
    }
}
