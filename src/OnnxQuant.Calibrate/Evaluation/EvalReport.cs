using OnnxQuant.Analysis;

namespace OnnxQuant.Calibrate.Evaluation;

/// <summary>The result of `onnxquant eval`.</summary>
public sealed record EvalReport
{
    public string Model { get; init; } = "";

    public string? Reference { get; init; }

    public ModelTask Kind { get; init; }

    /// <summary>The output measured (logits, or the hidden states).</summary>
    public string Output { get; init; } = "";

    public string Data { get; init; } = "";

    public string Tokenizer { get; init; } = "";

    public string Device { get; init; } = "";

    /// <summary>A device fallback or similar remark for the user; null when there is none.</summary>
    public string? Notice { get; init; }

    /// <summary>Causal LMs: the sliding-window perplexity of the model and, with a reference, of the reference.</summary>
    public PerplexityResult? Perplexity { get; init; }

    /// <summary>Encoders: embedding agreement with the reference.</summary>
    public EmbeddingResult? Embedding { get; init; }

    public LatencyResult? Latency { get; init; }

    public double ElapsedSeconds { get; init; }
}

/// <summary>Sliding-window perplexity (see <see cref="SlidingWindows"/>).</summary>
public sealed record PerplexityResult
{
    public double Perplexity { get; init; }

    public double? ReferencePerplexity { get; init; }

    /// <summary>Perplexity / reference perplexity - 1.</summary>
    public double? RelativeIncrease => ReferencePerplexity is { } r ? Perplexity / r - 1 : null;

    /// <summary>Share of scored positions where model and reference predict the same next token.</summary>
    public double? Top1Agreement { get; init; }

    /// <summary>||logits - reference logits|| / ||reference logits|| over the scored positions.</summary>
    public double? RelativeError { get; init; }

    public long ScoredTokens { get; init; }

    /// <summary>Tokens of the evaluation text (after --max-tokens).</summary>
    public int StreamTokens { get; init; }

    public int Windows { get; init; }

    public int Context { get; init; }

    public int Stride { get; init; }
}

/// <summary>An encoder's mean-pooled sentence embeddings against the reference's.</summary>
public sealed record EmbeddingResult
{
    public int Sentences { get; init; }

    public double MeanCosine { get; init; }

    public double MinCosine { get; init; }

    /// <summary>
    /// Share of sentences whose nearest neighbour (by cosine, among the other sentences) is the same sentence under both
    /// models.
    /// </summary>
    public double NeighbourAgreement { get; init; }

    /// <summary>||hidden - reference hidden|| / ||reference hidden|| over every token.</summary>
    public double RelativeError { get; init; }
}

/// <summary>
/// Median wall time of one inference (after warm-up). A "step" is a 1-token forward pass from an empty state: for a
/// model without KV cache that is all a single-token step can be; with a KV cache input it runs with an empty cache.
/// </summary>
public sealed record LatencyResult
{
    public int PrefillTokens { get; init; }

    public int Runs { get; init; }

    public double PrefillMs { get; init; }

    public double StepMs { get; init; }

    public double? ReferencePrefillMs { get; init; }

    public double? ReferenceStepMs { get; init; }

    public double? PrefillSpeedup => ReferencePrefillMs is { } r && PrefillMs > 0 ? r / PrefillMs : null;

    public double? StepSpeedup => ReferenceStepMs is { } r && StepMs > 0 ? r / StepMs : null;
}
