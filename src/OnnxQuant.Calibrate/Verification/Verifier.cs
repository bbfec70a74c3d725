using System.Diagnostics;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Calibrate.Evaluation;
using OnnxQuant.Calibrate.Sessions;

namespace OnnxQuant.Calibrate.Verification;

/// <summary>How to verify.</summary>
public sealed record VerifyOptions
{
    /// <summary>Held-out text; null for Persuasion (<see cref="HeldOutText.FindDefault"/>).</summary>
    public string? TextPath { get; init; }

    /// <summary>A tokenizer file or folder; null looks next to the original model.</summary>
    public string? TokenizerPath { get; init; }

    /// <summary>Encoders: how many sentences.</summary>
    public int Sentences { get; init; } = 256;

    /// <summary>Encoders: longest token sequence (longer sentences are cut).</summary>
    public int MaxSentenceTokens { get; init; } = 128;

    /// <summary>Causal LMs: how many windows of running text.</summary>
    public int Windows { get; init; } = 16;

    /// <summary>Causal LMs: tokens per window.</summary>
    public int WindowLength { get; init; } = 256;

    public SessionSettings Session { get; init; } = new();
}

/// <summary>
/// Runs the original and the emitted model on held-out text and compares them: the output error, and for causal LMs
/// perplexity of both and top-1 next-token agreement, for encoders the cosine of their mean-pooled embeddings.
/// The smooth and awq commands' check: `eval`'s comparison (<see cref="ModelPair"/>, <see cref="ComparisonMetrics"/>) on
/// its own samples, evenly spaced windows or sentences, with every position of a window compared.
/// </summary>
public static class Verifier
{
    public static VerificationReport Compare(string originalPath, string emittedPath, VerifyOptions options, IProgress<(int Done, int Total)>? progress = null,
        CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        using var pair = ModelPair.Open(emittedPath, originalPath, options.Session, RunStage.Verification);
        string textPath = options.TextPath ?? HeldOutText.FindDefault();
        var tokenizer = TokenizerLoader.Load(options.TokenizerPath, originalPath, RunStage.Verification);
        ComparisonMetrics metrics;
        if (pair.Kind == ModelKind.Encoder)
        {
            var sentences = HeldOutText.SentenceSamples(textPath, tokenizer, options.Sentences, options.MaxSentenceTokens);
            metrics = EmbeddingEvaluator.Compare(pair.Model, pair.Reference!, sentences, progress, cancel);
        }
        else
        {
            var windows = WindowSamples(textPath, tokenizer, options);
            metrics = PerplexityEvaluator.Compare(pair.Model, pair.Reference, windows.Count,
                i => new LmWindow(windows[i], 1, 0, windows[i].Length), rejectNonFinite: false, progress, cancel);
        }
        return new VerificationReport
        {
            Kind = pair.Kind,
            Output = pair.Output,
            Data = Path.GetFileName(textPath),
            Device = pair.Device,
            Samples = metrics.Samples,
            Tokens = metrics.Tokens,
            RelativeError = metrics.RelativeError,
            MaxAbsError = metrics.MaxAbsError,
            Top1Agreement = metrics.Top1Agreement,
            PerplexityOriginal = metrics.ReferencePerplexity,
            PerplexityEmitted = metrics.Perplexity,
            MeanCosine = metrics.MeanCosine,
            MinCosine = metrics.MinCosine,
            Elapsed = clock.Elapsed,
        };
    }

    /// <summary>
    /// Median time of one inference on <paramref name="tokens"/> tokens for both models, after warm-up runs. The two
    /// models run alternately, so load from other processes falls on both alike.
    /// </summary>
    public static LatencyReport MeasureLatency(string originalPath, string emittedPath, int tokens, int runs, VerifyOptions options)
    {
        using var pair = ModelPair.Open(emittedPath, originalPath, options.Session, RunStage.Verification);
        var tokenizer = TokenizerLoader.Load(options.TokenizerPath, originalPath, RunStage.Verification);
        string text = HeldOutText.Read(options.TextPath ?? HeldOutText.FindDefault());
        var ids = tokenizer.Encode(text[..Math.Min(text.Length, 40 * tokens)]);
        var sample = HeldOutText.Windows(ids, 1, tokens, tokenizer.Prefix)[0];
        var (emittedMs, originalMs) = LatencyProbe.Medians(pair.Model, pair.Reference, sample, runs);
        return new LatencyReport(tokens, runs, originalMs!.Value, emittedMs, pair.Device);
    }

    private static IReadOnlyList<int[]> WindowSamples(string textPath, CalibrationTokenizer tokenizer, VerifyOptions options)
    {
        var ids = tokenizer.Encode(HeldOutText.Read(textPath));
        return HeldOutText.Windows(ids, options.Windows, options.WindowLength, tokenizer.Prefix);
    }
}
