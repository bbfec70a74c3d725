namespace OnnxQuant.Fixtures;

/// <summary>
/// Seeded weights at trained-network scale: linears N(0, clamp(1/sqrt(fan_in), 0.02, 0.1)), biases and betas
/// N(0, 0.02), embeddings N(0, 0.1), norm gammas exp(N(0, 0.2)) so channels differ but stay near 1. Every tensor draws
/// from its own stream named by <c>role</c>, so values do not depend on build order, dtype or other options; the outlier
/// plan is applied after drawing, which keeps the outlier-free twin's weights otherwise identical.
/// </summary>
internal sealed class FixtureWeights
{
    private readonly GraphBuilder _graph;
    private readonly FixtureOptions _options;

    public FixtureWeights(GraphBuilder graph, FixtureOptions options, OutlierPlan outliers)
    {
        _graph = graph;
        _options = options;
        Outliers = outliers;
    }

    public OutlierPlan Outliers { get; }

    private FixtureRandom Stream(string role) => FixtureRandom.For(_options.Seed, role);

    /// <summary>A MatMul weight [rows = in, cols = out] whose rows are divided by the reading norm's <paramref name="rowFactors"/>.</summary>
    public string Linear(string name, string role, int rows, int cols, float[]? rowFactors = null)
    {
        double std = Math.Clamp(1.0 / Math.Sqrt(rows), 0.02, 0.1);
        var w = Stream(role).Normal(rows * cols, std);
        OutlierPlan.DivideRows(w, cols, rowFactors);
        return _graph.Weight(name, w, new long[] { rows, cols });
    }

    /// <summary>A Gemm(transB=1) weight stored [out, in] like nn.Linear.</summary>
    public string LinearTransposed(string name, string role, int outFeatures, int inFeatures)
    {
        double std = Math.Clamp(1.0 / Math.Sqrt(inFeatures), 0.02, 0.1);
        return _graph.Weight(name, Stream(role).Normal(outFeatures * inFeatures, std), new long[] { outFeatures, inFeatures });
    }

    public string Bias(string name, string role, int size) =>
        _graph.Weight(name, Stream(role).Normal(size, 0.02), new long[] { size });

    public string Embedding(string name, string role, int rows, int cols) =>
        _graph.Weight(name, Stream(role).Normal(rows * cols, 0.1), new long[] { rows, cols });

    /// <summary>
    /// A norm scale; with <paramref name="outliers"/> its outlier channels are multiplied by <paramref name="factors"/>
    /// (null when nothing was scaled), which the weights reading the norm output and a LayerNorm's beta must share.
    /// </summary>
    public string Gamma(string name, string role, bool outliers, out float[]? factors, bool fp32 = false)
    {
        var rng = Stream(role);
        var gamma = new float[_options.Hidden];
        for (int i = 0; i < gamma.Length; i++) gamma[i] = (float)Math.Exp(0.2 * rng.NextNormal());
        factors = outliers ? Outliers.FactorsFor(gamma) : null;
        OutlierPlan.ScaleChannels(gamma, factors);
        return _graph.Weight(name, gamma, new long[] { gamma.Length }, fp32);
    }

    /// <summary>A LayerNorm shift, scaled by its gamma's factors so the whole output channel is scaled.</summary>
    public string Beta(string name, string role, float[]? factors)
    {
        var beta = Stream(role).Normal(_options.Hidden, 0.02);
        OutlierPlan.ScaleChannels(beta, factors);
        return _graph.Weight(name, beta, new long[] { beta.Length });
    }
}
