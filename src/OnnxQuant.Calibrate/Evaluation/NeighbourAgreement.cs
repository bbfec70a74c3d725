using System.Numerics.Tensors;

namespace OnnxQuant.Calibrate.Evaluation;

/// <summary>
/// Nearest-neighbour agreement of two embeddings of the same sentences: for each sentence, its nearest other sentence
/// by cosine under one model and under the other; the share of sentences where both pick the same one. It asks what a
/// retrieval user sees: does the quantized model still return the same top hit?
/// </summary>
public static class NeighbourAgreement
{
    /// <summary>For each row of <paramref name="embeddings"/>, the index of its most cosine-similar other row.</summary>
    public static int[] NearestNeighbours(IReadOnlyList<float[]> embeddings)
    {
        int n = embeddings.Count;
        if (n < 2)
            throw new OnnxQuantException(null, $"nearest neighbours need at least 2 sentences (got {n})", ExitCode.BadInput);
        var unit = embeddings.Select(Normalised).ToArray();
        var nearest = new int[n];
        Parallel.For(0, n, i =>
        {
            int best = -1;
            float bestSimilarity = float.NegativeInfinity;
            for (int j = 0; j < n; j++)
            {
                if (j == i) continue;
                float similarity = TensorPrimitives.Dot(unit[i], unit[j]);
                if (similarity > bestSimilarity)
                {
                    bestSimilarity = similarity;
                    best = j;
                }
            }
            nearest[i] = best;
        });
        return nearest;
    }

    /// <summary>Share of rows whose nearest neighbour is the same under both embeddings.</summary>
    public static double Agreement(IReadOnlyList<float[]> a, IReadOnlyList<float[]> b)
    {
        if (a.Count != b.Count)
            throw new ArgumentException($"{a.Count} embeddings against {b.Count}");
        var na = NearestNeighbours(a);
        var nb = NearestNeighbours(b);
        int same = 0;
        for (int i = 0; i < na.Length; i++)
            if (na[i] == nb[i]) same++;
        return (double)same / na.Length;
    }

    private static float[] Normalised(float[] v)
    {
        var unit = new float[v.Length];
        float norm = TensorPrimitives.Norm(v);
        TensorPrimitives.Divide(v, norm > 0 ? norm : 1f, unit);
        return unit;
    }
}
