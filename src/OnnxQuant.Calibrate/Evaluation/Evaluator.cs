using System.Diagnostics;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Calibrate.Sessions;

namespace OnnxQuant.Calibrate.Evaluation;

/// <summary>
/// `onnxquant eval`: a causal LM's sliding-window perplexity on held-out text, or an encoder's embedding agreement with
/// a reference model; optionally CPU/GPU latency of a prefill and a 1-token step. The verification after smooth/awq
/// (Verification.Verifier) is the same comparison (<see cref="ModelPair"/>, <see cref="ComparisonMetrics"/>) with its own samples.
/// </summary>
public static class Evaluator
{
    public static EvalReport Run(string modelPath, EvalOptions options, IProgress<(int Done, int Total)>? progress = null, CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        using var pair = ModelPair.Open(modelPath, options.ReferencePath, options.Session, RunStage.Evaluation, options.Task);
        var (kind, output, model, reference) = (pair.Kind, pair.Output, pair.Model, pair.Reference);
        if (kind == ModelTask.Encoder && reference is null)
            throw new OnnxQuantException(modelPath,
                $"is measured as an encoder (on '{output}'), so it has no perplexity; pass --reference ORIGINAL.onnx to compare its sentence embeddings with the original's, or --task causal-lm if it is a causal LM", ExitCode.Usage);

        string textPath = options.TextPath ?? HeldOutText.FindDefault();
        string text = HeldOutText.Read(textPath);
        var tokenizer = TokenizerLoader.Load(options.TokenizerPath ?? TokenizerFolder(modelPath, options.ReferencePath), modelPath, RunStage.Evaluation);
        PerplexityResult? perplexity = null;
        EmbeddingResult? embedding = null;
        int[] prefill;
        if (kind == ModelTask.CausalLm)
        {
            var stream = tokenizer.Prefix.Concat(tokenizer.Encode(text)).ToArray();
            prefill = stream;
            if (options.MaxTokens is { } max)
                stream = stream[..Math.Min(stream.Length, Math.Max(2, max))];
            perplexity = PerplexityEvaluator.Run(model, reference, stream, options.Context, options.Stride ?? options.Context, progress, cancel);
        }
        else
        {
            var sentences = HeldOutText.SentenceSamples(textPath, tokenizer, options.Sentences, options.MaxSentenceTokens);
            embedding = EmbeddingEvaluator.Run(model, reference!, sentences, progress, cancel);
            prefill = tokenizer.Prefix.Concat(tokenizer.Encode(text[..Math.Min(text.Length, 40_000)])).ToArray();
        }

        LatencyResult? latency = null;
        if (options.LatencyTokens > 0)
        {
            if (prefill.Length < options.LatencyTokens)
                throw new OnnxQuantException(textPath, $"has {prefill.Length} tokens, fewer than the {options.LatencyTokens} the latency probe's prefill needs", ExitCode.BadInput);
            latency = LatencyProbe.Measure(model, reference, prefill[..options.LatencyTokens], options.LatencyRuns);
        }
        return new EvalReport
        {
            Model = modelPath,
            Reference = options.ReferencePath,
            Kind = kind,
            Output = output,
            Data = Path.GetFileName(textPath),
            Tokenizer = tokenizer.Description,
            Device = pair.Device,
            Notice = pair.Notice,
            Perplexity = perplexity,
            Embedding = embedding,
            Latency = latency,
            ElapsedSeconds = clock.Elapsed.TotalSeconds,
        };
    }

    /// <summary>
    /// Where to look for the tokenizer when none is given: beside the model, else beside the reference (an emitted model
    /// written to another folder is evaluated with its original's tokenizer). Null lets the loader report the model folder.
    /// </summary>
    private static string? TokenizerFolder(string modelPath, string? referencePath)
    {
        static bool Holds(string path) =>
            new[] { "tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt" }
                .Any(name => File.Exists(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".", name)));
        if (Holds(modelPath) || referencePath is null || !Holds(referencePath))
            return null;
        return Path.GetDirectoryName(Path.GetFullPath(referencePath));
    }
}
