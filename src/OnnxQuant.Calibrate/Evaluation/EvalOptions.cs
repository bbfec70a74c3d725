using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Sessions;

namespace OnnxQuant.Calibrate.Evaluation;

/// <summary>What `onnxquant eval` measures and on what.</summary>
public sealed record EvalOptions
{
    /// <summary>Evaluation text; null for the held-out Persuasion (<see cref="HeldOutText.FindDefault"/>).</summary>
    public string? TextPath { get; init; }

    /// <summary>A tokenizer file or folder; null looks beside the model, then beside the reference.</summary>
    public string? TokenizerPath { get; init; }

    /// <summary>A model to compare with (usually the FP32 original); required for encoders.</summary>
    public string? ReferencePath { get; init; }

    /// <summary>Causal LMs: tokens per window.</summary>
    public int Context { get; init; } = 256;

    /// <summary>Causal LMs: tokens between window starts; null means <see cref="Context"/> (non-overlapping windows).</summary>
    public int? Stride { get; init; }

    /// <summary>Causal LMs: evaluate only the first this many tokens of the text (null: all).</summary>
    public int? MaxTokens { get; init; }

    /// <summary>Encoders: how many sentences, evenly spaced through the text.</summary>
    public int Sentences { get; init; } = 256;

    /// <summary>Encoders: longest token sequence per sentence (longer ones are cut).</summary>
    public int MaxSentenceTokens { get; init; } = 128;

    /// <summary>Prefill length for the latency probe; 0 skips latency.</summary>
    public int LatencyTokens { get; init; }

    /// <summary>Timed runs per latency figure (after two warm-up runs).</summary>
    public int LatencyRuns { get; init; } = 10;

    /// <summary>Causal LM or encoder as the user said (--task); null decides from the graph.</summary>
    public ModelTask? Task { get; init; }

    public SessionSettings Session { get; init; } = new();
}
