using System.Diagnostics;
using OnnxQuant.Analysis;
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

    /// <summary>Causal LM or encoder as the user said (--task); null decides from the graph.</summary>
    public ModelTask? Task { get; init; }

    public SessionSettings Session { get; init; } = new();
}

/// <summary>
/// Runs the original and the emitted model on held-out text and compares them: the output error, and for causal LMs
/// perplexity of both and top-1 next-token agreement, for encoders the cosine of their mean-pooled embeddings; models
/// fed arrays (.npz) like encoders, sample by sample.
/// The smooth and awq commands' check: `eval`'s comparison (<see cref="ModelPair"/>, <see cref="ComparisonMetrics"/>) on
/// its own samples, evenly spaced windows or sentences, with every position of a window compared.
/// </summary>
public static class Verifier
{
    public static VerificationReport Compare(string originalPath, string emittedPath, VerifyOptions options, IProgress<(int Done, int Total)>? progress = null,
        CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        string textPath = options.TextPath ?? HeldOutText.FindDefault();
        // What can fail without a session fails before two sessions of a multi-GB model are opened.
        var tokenizer = CalibrationData.IsArrays(textPath) || DataFiles.IsPreTokenized(textPath)
            ? null
            : TokenizerLoader.Load(options.TokenizerPath, originalPath, RunStage.Verification);
        PairMemory.EnsureFits(originalPath, emittedPath, "the held-out check", PairMemory.AvailableBytes());
        using var pair = ModelPair.Open(emittedPath, originalPath, options.Session, RunStage.Verification, options.Task);
        ComparisonMetrics metrics;
        if (CalibrationData.IsArrays(textPath))
        {
            var feeds = ArrayFeeds.Load(textPath);
            metrics = EmbeddingEvaluator.Compare(pair.Model, pair.Reference!, feeds, Math.Min(feeds.Count, options.Sentences), progress, cancel);
        }
        else
        {
            var samples = HeldOutSamples.Load(textPath, tokenizer, options, pair.Kind);
            metrics = pair.Kind == ModelTask.Encoder
                ? EmbeddingEvaluator.Compare(pair.Model, pair.Reference!, samples, progress, cancel)
                : PerplexityEvaluator.Compare(pair.Model, pair.Reference, samples.Count,
                    i => new LmWindow(samples[i], 1, 0, samples[i].Length), rejectNonFinite: false, progress, cancel);
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
        PairMemory.EnsureFits(originalPath, emittedPath, "the latency probe", PairMemory.AvailableBytes());
        using var pair = ModelPair.Open(emittedPath, originalPath, options.Session, RunStage.Verification, options.Task);
        var sample = HeldOutSamples.LatencySample(options.TextPath ?? HeldOutText.FindDefault(), originalPath, options, tokens);
        var (emittedMs, originalMs) = LatencyProbe.Medians(pair.Model, pair.Reference, sample, runs);
        return new LatencyReport(tokens, runs, originalMs!.Value, emittedMs, pair.Device);
    }
}
