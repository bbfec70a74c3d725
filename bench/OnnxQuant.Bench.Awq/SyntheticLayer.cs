using OnnxQuant.Awq;
using OnnxQuant.Numerics;

namespace OnnxQuant.Bench.Awq;

/// <summary>One smoothing group of the synthetic layer: recorded rows, channel means and the consumers' weights.</summary>
internal sealed record SyntheticGroup(string Name, MatrixView Rows, float[] MeanAbs, IReadOnlyList<AwqWeight> Weights, IReadOnlySet<string> QueryKey);

/// <summary>
/// A Llama decoder layer's four AWQ groups (qkv, o, gate/up, down) with Gaussian weights (sigma 0.02) and Gaussian
/// activation rows in which 1% of the channels are 20x larger, so the searches do real work rather than stop at r = 0.
/// </summary>
internal static class SyntheticLayer
{
    public sealed record Layer(IReadOnlyList<SyntheticGroup> Groups);

    public static Layer Create(int hidden, int intermediate, int rows, int seed)
    {
        var rng = new Random(seed);
        var hiddenRows = Rows(rng, rows, hidden);
        var attnRows = Rows(rng, rows, hidden);
        var mlpRows = Rows(rng, rows, intermediate);
        return new Layer(
        [
            Group("qkv", hiddenRows, rows, hidden, [("q", hidden), ("k", hidden), ("v", hidden)], rng, ["q", "k"]),
            Group("o", attnRows, rows, hidden, [("o", hidden)], rng, []),
            Group("gate/up", Rows(rng, rows, hidden), rows, hidden, [("gate", intermediate), ("up", intermediate)], rng, []),
            Group("down", mlpRows, rows, intermediate, [("down", hidden)], rng, []),
        ]);
    }

    private static SyntheticGroup Group(string name, float[] x, int rows, int k, (string Name, int N)[] consumers, Random rng, string[] queryKey)
    {
        var meanAbs = new float[k];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < k; j++) meanAbs[j] += MathF.Abs(x[r * k + j]) / rows;
        var weights = consumers.Select(c => new AwqWeight(c.Name, Gaussian(rng, k * c.N, 0.02f), c.N)).ToList();
        return new SyntheticGroup(name, MatrixView.Of(x, rows, k), meanAbs, weights, queryKey.ToHashSet());
    }

    private static float[] Rows(Random rng, int rows, int k)
    {
        var x = Gaussian(rng, rows * k, 1f);
        for (int j = 0; j < k; j += 100)
            for (int r = 0; r < rows; r++) x[r * k + j] *= 20f;
        return x;
    }

    private static float[] Gaussian(Random rng, int count, float sigma)
    {
        var v = new float[count];
        for (int i = 0; i < count; i += 2)
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble(), radius = Math.Sqrt(-2 * Math.Log(u1));
            v[i] = sigma * (float)(radius * Math.Cos(2 * Math.PI * u2));
            if (i + 1 < count) v[i + 1] = sigma * (float)(radius * Math.Sin(2 * Math.PI * u2));
        }
        return v;
    }
}
