using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Calibrate.Evaluation;
using OnnxQuant.Calibrate.Recording;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.IO;

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
/// Shared by the smooth, awq and eval commands.
/// </summary>
public static class Verifier
{
    public static VerificationReport Compare(string originalPath, string emittedPath, VerifyOptions options, IProgress<(int Done, int Total)>? progress = null,
        CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        using var original = Open(originalPath, options.Session);
        using var emitted = Open(emittedPath, options.Session);
        var (kind, output) = Classify(original.Session, originalPath);
        if (!emitted.Session.OutputMetadata.ContainsKey(output))
            throw new OnnxQuantException(emittedPath, $"has no output '{output}' to compare with the original model");
        string textPath = options.TextPath ?? HeldOutText.FindDefault();
        var tokenizer = TokenizerLoader.Load(options.TokenizerPath, originalPath);
        var samples = kind == ModelKind.Encoder ? SentenceSamples(textPath, tokenizer, options) : WindowSamples(textPath, tokenizer, options);
        var metrics = new ComparisonMetrics(kind);
        for (int i = 0; i < samples.Count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            var a = Run(original.Session, samples[i], output, originalPath);
            var b = Run(emitted.Session, samples[i], output, emittedPath);
            metrics.Add(samples[i], a.Values, b.Values, a.Shape);
            progress?.Report((i + 1, samples.Count));
        }
        return metrics.ToReport() with
        {
            Output = output,
            Data = Path.GetFileName(textPath),
            Device = original.Device,
            Elapsed = clock.Elapsed,
        };
    }

    /// <summary>
    /// Median time of one inference on <paramref name="tokens"/> tokens for both models, after warm-up runs. The two
    /// models run alternately, so load from other processes falls on both alike.
    /// </summary>
    public static LatencyReport MeasureLatency(string originalPath, string emittedPath, int tokens, int runs, VerifyOptions options)
    {
        using var original = Open(originalPath, options.Session);
        using var emitted = Open(emittedPath, options.Session);
        var tokenizer = TokenizerLoader.Load(options.TokenizerPath, originalPath);
        string text = HeldOutText.Read(options.TextPath ?? HeldOutText.FindDefault());
        var ids = tokenizer.Encode(text[..Math.Min(text.Length, 40 * tokens)]);
        var sample = HeldOutText.Windows(ids, 1, tokens, tokenizer.Prefix)[0];
        var (_, output) = Classify(original.Session, originalPath);
        var (originalMs, emittedMs) = LatencyProbe.AlternatingMedians(
            () => Run(original.Session, sample, output, originalPath), () => Run(emitted.Session, sample, output, emittedPath), runs);
        return new LatencyReport(tokens, runs, originalMs, emittedMs!.Value, original.Device);
    }

    /// <summary>Causal LM when an output is named like logits; else an encoder with a [batch, sequence, hidden] output.</summary>
    public static (ModelKind Kind, string Output) Classify(InferenceSession session, string label)
    {
        var outputs = session.OutputMetadata;
        var logits = outputs.Keys.FirstOrDefault(n => n.Contains("logits", StringComparison.OrdinalIgnoreCase));
        if (logits is not null)
            return (ModelKind.CausalLm, logits);
        var hidden = outputs.FirstOrDefault(kv => kv.Value.IsTensor && kv.Value.Dimensions.Length == 3);
        if (hidden.Key is not null)
            return (ModelKind.Encoder, hidden.Key);
        throw new OnnxQuantException(label, "has neither a logits output nor a [batch, sequence, hidden] output, so there is nothing to verify on text", ExitCode.Unsupported);
    }

    internal static OpenedSession Open(string path, SessionSettings settings)
    {
        // The loader's checks first (protobuf, external data locations and lengths, types and shapes of the linears):
        // ONNX Runtime would read an absolute or '..' location without a word, and its own errors are terse.
        using (var checkedModel = ModelFile.Load(path))
            ModelChecks.EnsureComputable(checkedModel);
        string folder = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        return SessionFactory.Open(File.ReadAllBytes(path), settings, folder, path);
    }

    internal static List<int[]> SentenceSamples(string textPath, CalibrationTokenizer tokenizer, VerifyOptions options)
    {
        var sentences = HeldOutText.Sentences(HeldOutText.Read(textPath), options.Sentences);
        int body = options.MaxSentenceTokens - tokenizer.Prefix.Length - tokenizer.Suffix.Length;
        return sentences.Select(s => tokenizer.Prefix.Concat(tokenizer.Encode(s).Take(body)).Concat(tokenizer.Suffix).ToArray()).ToList();
    }

    private static List<int[]> WindowSamples(string textPath, CalibrationTokenizer tokenizer, VerifyOptions options)
    {
        var ids = tokenizer.Encode(HeldOutText.Read(textPath));
        return HeldOutText.Windows(ids, options.Windows, options.WindowLength, tokenizer.Prefix).ToList();
    }

    internal static (float[] Values, long[] Shape) Run(InferenceSession session, int[] ids, string output, string label)
    {
        var (names, values) = InputFeeds.Build(session.InputMetadata, [ids], label);
        try
        {
            using var runOptions = new RunOptions();
            using var results = session.Run(runOptions, names, values, [output]);
            var info = results[0].GetTensorTypeAndShape();
            float[] data = info.ElementDataType switch
            {
                TensorElementType.Float => results[0].GetTensorDataAsSpan<float>().ToArray(),
                TensorElementType.Float16 => ToFloats(results[0].GetTensorDataAsSpan<Float16>()),
                _ => throw new OnnxQuantException(label, $"output '{output}' is {info.ElementDataType}, not float", ExitCode.Unsupported),
            };
            return (data, info.Shape);
        }
        catch (OnnxRuntimeException e)
        {
            throw new OnnxQuantException(label, $"ONNX Runtime failed to run the model: {e.Message.Split('\n')[0]}", ExitCode.Unsupported, e);
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    internal static float[] ToFloats(ReadOnlySpan<Float16> half)
    {
        var result = new float[half.Length];
        System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<Float16, Half>(half), result);
        return result;
    }
}
