using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Evaluation;

namespace OnnxQuant.Calibrate.Verification;

/// <summary>Original versus emitted model on held-out data.</summary>
public sealed record VerificationReport
{
    public ModelTask Kind { get; init; }

    /// <summary>The output compared (logits, or the hidden states).</summary>
    public string Output { get; init; } = "";

    public string Data { get; init; } = "";

    public string Device { get; init; } = "";

    public int Samples { get; init; }

    public long Tokens { get; init; }

    /// <summary>||emitted - original|| / ||original|| over every compared output value.</summary>
    public double RelativeError { get; init; }

    /// <summary>Largest |emitted - original| of any output value.</summary>
    public double MaxAbsError { get; init; }

    /// <summary>Causal LMs: share of positions where both models predict the same next token.</summary>
    public double? Top1Agreement { get; init; }

    public double? PerplexityOriginal { get; init; }

    public double? PerplexityEmitted { get; init; }

    /// <summary>Encoders: mean and worst cosine between the two models' mean-pooled embeddings.</summary>
    public double? MeanCosine { get; init; }

    public double? MinCosine { get; init; }

    public TimeSpan Elapsed { get; init; }
}

/// <summary>Median wall time of one run on a fixed input, for both models.</summary>
public sealed record LatencyReport(int Tokens, int Runs, double OriginalMs, double EmittedMs, string Device)
{
    public double Speedup => EmittedMs > 0 ? OriginalMs / EmittedMs : double.NaN;
}
