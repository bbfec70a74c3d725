namespace OnnxQuant.Bench.Schemes;

/// <summary>The figures of one scheme on one model (null where not measured or not applicable).</summary>
internal sealed record SchemeRow
{
    public required string Model { get; init; }

    public required string Scheme { get; init; }

    public required string Label { get; init; }

    /// <summary>Why the scheme has no figures (the pass or eval failed, or the command is missing); null when it ran.</summary>
    public string? Error { get; init; }

    public long SizeBytes { get; init; }

    public string? PassCommand { get; init; }

    public double? PassSeconds { get; init; }

    public long? PassPeakRssBytes { get; init; }

    public double? Perplexity { get; init; }

    public double? ReferencePerplexity { get; init; }

    public double? Top1Agreement { get; init; }

    public double? RelativeError { get; init; }

    public double? MeanCosine { get; init; }

    public double? MinCosine { get; init; }

    public double? NeighbourAgreement { get; init; }

    public double? PrefillMs { get; init; }

    public double? ReferencePrefillMs { get; init; }

    public double? StepMs { get; init; }

    public double? ReferenceStepMs { get; init; }

    /// <summary>Accuracy loss against FP32 in percent: perplexity increase for LMs, 100 (1 - mean cosine) for encoders.</summary>
    public double? AccuracyLossPercent =>
        Perplexity is { } p && ReferencePerplexity is { } r ? (p / r - 1) * 100
        : MeanCosine is { } c ? (1 - c) * 100
        : null;
}

/// <summary>Calibration of one model, shared by the schemes that need statistics.</summary>
internal sealed record CalibrationRow(string Model, string Command, double Seconds, long PeakRssBytes, int Samples, int Tokens);
