using OnnxQuant.IR;

namespace OnnxQuant.Statistics;

/// <summary>How the statistics were gathered; stored in the file so a reader can tell what it is looking at.</summary>
public sealed record CalibrationInfo
{
    public int Samples { get; init; }

    public int SequenceLength { get; init; }

    public int Seed { get; init; }

    /// <summary>Where the tokens came from, e.g. "emma.txt (text)".</summary>
    public string Data { get; init; } = "";

    /// <summary>Which tokenizer made them, e.g. "WordPiece vocab.txt".</summary>
    public string Tokenizer { get; init; } = "";
}

/// <summary>
/// The statistics of one calibration run, keyed by activation tensor name, plus the fingerprint of the model they were
/// recorded on. Passes take them through <see cref="EnsureMatches"/>, which refuses statistics of another model.
/// </summary>
public sealed class CalibrationStats
{
    private readonly SortedDictionary<string, ActivationStats> _tensors;

    public CalibrationStats(string modelFingerprint, CalibrationInfo info, IEnumerable<ActivationStats> tensors)
    {
        ModelFingerprint = modelFingerprint;
        Info = info;
        _tensors = new SortedDictionary<string, ActivationStats>(StringComparer.Ordinal);
        foreach (var t in tensors)
            if (!_tensors.TryAdd(t.Name, t))
                throw new ArgumentException($"activation '{t.Name}' appears twice");
    }

    /// <summary><see cref="Statistics.ModelFingerprint.Compute"/> of the calibrated model.</summary>
    public string ModelFingerprint { get; }

    public CalibrationInfo Info { get; }

    /// <summary>Per-tensor statistics in ordinal name order.</summary>
    public IReadOnlyCollection<ActivationStats> Tensors => _tensors.Values;

    public ActivationStats? Get(string tensorName) => _tensors.GetValueOrDefault(tensorName);

    /// <summary>Throws when these statistics were recorded on another model than <paramref name="graph"/>.</summary>
    public void EnsureMatches(Graph graph, string? statsPath)
    {
        string actual = Statistics.ModelFingerprint.Compute(graph);
        if (actual != ModelFingerprint)
            throw new OnnxQuantException(statsPath,
                $"these statistics were recorded on another model (fingerprint {Short(ModelFingerprint)}, this model's is {Short(actual)}). " +
                "Run `onnxquant calibrate` on this exact model file; statistics do not carry over after the model was changed (smoothed, quantized, re-exported)");
    }

    private static string Short(string hex) => hex.Length > 12 ? hex[..12] : hex;
}
