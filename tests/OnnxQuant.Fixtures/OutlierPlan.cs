namespace OnnxQuant.Fixtures;

/// <summary>
/// Function-preserving outlier injection (docs/architecture.md, "Outlier twins"; the inverse of SmoothQuant): channel j of a norm's
/// gamma (and beta) is multiplied by a factor and input row j of every weight reading that norm's output is divided by
/// it, so the products are unchanged in exact arithmetic while the MatMul inputs carry channels about Scale (20-100)
/// times larger than the typical channel.
/// The channels are the first <see cref="FixtureOptions.OutlierChannels"/> of a seeded permutation, so a fixture with
/// more outliers keeps the channels of one with fewer.
/// </summary>
public sealed class OutlierPlan
{
    public OutlierPlan(FixtureOptions options)
    {
        var rng = FixtureRandom.For(options.Seed, "outlier-channels");
        var order = Enumerable.Range(0, options.Hidden).ToArray();
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = rng.NextInt(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        Channels = order.Take(options.OutlierChannels).Order().ToArray();
        Scale = options.OutlierChannels > 0 ? options.OutlierScale : 1f;
    }

    /// <summary>The hidden channels that carry outliers, ascending (empty when none).</summary>
    public IReadOnlyList<int> Channels { get; }

    public float Scale { get; }

    public bool Any => Channels.Count > 0;

    /// <summary>
    /// The per-channel output factors for a norm with scale <paramref name="gamma"/>: 1, and for outlier channels
    /// <see cref="Scale"/> x median|gamma| / |gamma_j|, so every outlier channel ends up with a gamma of Scale times the
    /// typical one (a small random gamma_j would otherwise hide the outlier). Null when there are no outliers.
    /// </summary>
    public float[]? FactorsFor(ReadOnlySpan<float> gamma)
    {
        if (!Any) return null;
        var magnitudes = new float[gamma.Length];
        for (int i = 0; i < gamma.Length; i++) magnitudes[i] = Math.Abs(gamma[i]);
        Array.Sort(magnitudes);
        float median = magnitudes[magnitudes.Length / 2];
        var factors = Enumerable.Repeat(1f, gamma.Length).ToArray();
        foreach (var c in Channels) factors[c] = Scale * median / Math.Abs(gamma[c]);
        return factors;
    }

    /// <summary>Multiplies a per-channel vector (gamma, beta) by <paramref name="factors"/> in place.</summary>
    public static float[] ScaleChannels(float[] vector, float[]? factors)
    {
        if (factors is null) return vector;
        for (int c = 0; c < vector.Length; c++) vector[c] *= factors[c];
        return vector;
    }

    /// <summary>Divides row j of a row-major [channels, cols] weight by factors[j] in place.</summary>
    public static float[] DivideRows(float[] weight, int cols, float[]? factors)
    {
        if (factors is null) return weight;
        if (weight.Length != factors.Length * cols)
            throw new ArgumentException($"weight of {weight.Length} values is not [{factors.Length}, {cols}]");
        for (int row = 0; row < factors.Length; row++)
        {
            if (factors[row] == 1f) continue;
            var span = weight.AsSpan(row * cols, cols);
            for (int k = 0; k < span.Length; k++) span[k] /= factors[row];
        }
        return weight;
    }
}

/// <summary>One norm whose output carries the outlier channels, and the linears that read it.</summary>
/// <param name="Norm">The norm's node name (its last node, Mul(gamma) / Add(beta), for decomposed norms).</param>
/// <param name="Activation">The norm output: the tensor the consumers' MatMuls read.</param>
/// <param name="Consumers">Node names of the MatMuls whose weight rows were divided.</param>
/// <param name="ResidualRescale">Bert only: the Mul(1/scale) node that restores the residual branch (a post-LN BERT
/// adds the norm output itself to the residual stream, which must not change).</param>
public sealed record OutlierSite(string Norm, string Activation, IReadOnlyList<string> Consumers, string? ResidualRescale = null);

/// <summary>What a fixture holds beyond its graph: where outliers were injected, for tests to check against.</summary>
public sealed record FixtureDescription(FixtureOptions Options, IReadOnlyList<int> OutlierChannels, float OutlierScale, IReadOnlyList<OutlierSite> Sites)
{
    /// <summary>One line, e.g. for a README: the family, sizes and the outlier channels.</summary>
    public string Summary()
    {
        var o = Options;
        string outliers = OutlierChannels.Count == 0
            ? "no injected outliers"
            : $"outlier channels {string.Join(", ", OutlierChannels)} x{OutlierScale:0.##} at {Sites.Count} norm outputs";
        return $"{o.Family}: {o.Layers} layers, hidden {o.Hidden}, {o.Heads} heads, intermediate {o.Intermediate}, vocab {o.Vocab}, " +
               $"{(o.Fp16 ? "fp16" : "fp32")}, seed {o.Seed}; {outliers}";
    }
}
