using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Calibrate.Recording;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.Calibrate.Evaluation;
using OnnxQuant.IO;
using OnnxQuant.Statistics;

namespace OnnxQuant.Calibrate.Diff;

/// <summary>How `diff --numeric` samples the models.</summary>
public sealed record NumericDiffOptions
{
    /// <summary>Data files (text, .jsonl, .ids); empty for the held-out Persuasion.</summary>
    public IReadOnlyList<string> DataPaths { get; init; } = [];

    /// <summary>A tokenizer file or folder; null looks next to the original model.</summary>
    public string? TokenizerPath { get; init; }

    /// <summary>Samples; null for 8 windows (causal LMs) or 32 sentences (encoders).</summary>
    public int? Samples { get; init; }

    /// <summary>Tokens per window (causal LMs and --data), the longest sentence for encoders.</summary>
    public int SequenceLength { get; init; } = 128;

    public SessionSettings Session { get; init; } = new();
}

/// <summary>
/// A linear's output and input tensors to compare. A "fit" flag says the rewrite divided that tensor by a smoothing
/// scale per channel on purpose (an output whose columns took the next group's s; an input whose producer took s), so
/// the comparison first fits one factor per channel.
/// </summary>
public sealed record TensorToCompare(string Linear, string Tensor, bool PerChannelScale, string Input, bool InputPerChannelScale);

/// <summary>
/// One tensor the two models share, compared: ||after - before|| / ||before|| and the largest |after - before| over all
/// samples. With <see cref="ScaleFitted"/> the relative error is that of after times the least-squares factor per
/// channel, and the largest error is not kept (it would need every sample twice).
/// </summary>
public sealed record TensorError(string Linear, string Tensor, double RelativeError, double? MaxAbsError, bool ScaleFitted)
{
    /// <summary>The relative error the linear's input already had (null when not measured).</summary>
    public double? InputError { get; init; }

    /// <summary>
    /// What this linear adds: its output's relative error minus its input's. The output error alone grows with depth as
    /// earlier errors propagate; the difference points at the linear whose quantization hurts.
    /// </summary>
    public double AddedError => RelativeError - (InputError ?? 0);
}

/// <summary>Per-linear output errors, worst (largest <see cref="TensorError.AddedError"/>) first, and the final output's.</summary>
public sealed record NumericDiffReport(IReadOnlyList<TensorError> Linears, TensorError Output, ModelTask Kind, int Samples, string Data, string Device,
    TimeSpan Elapsed)
{
    /// <summary>Linears whose output tensor one of the models does not have (not compared).</summary>
    public IReadOnlyList<string> NotCompared { get; init; } = [];

    /// <summary>Per-channel statistics of the linears' inputs in the original model on these samples (for the HTML panels).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public CalibrationStats? InputStats { get; init; }
}

/// <summary>
/// Runs the original and the rewritten model on a few held-out samples and compares, tensor by tensor, the output of
/// every linear (the rewrites keep the linear's output name; docs/architecture.md, "Diff") and the final
/// output. Each model runs as a recording copy whose outputs are exactly those tensors (<see cref="RecordingModel"/>).
/// </summary>
public static class NumericDiff
{
    private const int DefaultWindows = 8;
    private const int DefaultSentences = 32;

    /// <summary>Compares <paramref name="tensors"/>; the report sorts them by the error each linear adds, worst first.</summary>
    public static NumericDiffReport Run(string beforePath, string afterPath, IReadOnlyList<TensorToCompare> tensors,
        NumericDiffOptions options, IProgress<(int Done, int Total)>? progress = null, CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        using var before = ModelFile.Load(beforePath);
        using var after = ModelFile.Load(afterPath);
        ModelChecks.EnsureComputable(before);
        ModelChecks.EnsureComputable(after);
        var (kind, output) = Classify(before, beforePath);
        if (!after.Graph.IsGraphOutput(output))
            throw new OnnxQuantException(afterPath, $"has no output '{output}' to compare with the original model", ExitCode.Unsupported);
        var compared = tensors.Where(t => Computes(before, t.Tensor) && Computes(after, t.Tensor)).ToList();
        var probes = compared.Select(t => (t.Tensor, t.PerChannelScale))
            .Concat(compared.Where(t => Computes(before, t.Input) && Computes(after, t.Input)).Select(t => (t.Input, t.InputPerChannelScale)))
            .Append((output, false)).Distinct().ToList();
        var names = probes.Select(p => p.Item1).Distinct(StringComparer.Ordinal).ToList();
        using var a = Open(before, names, beforePath, options.Session);
        using var b = Open(after, names, afterPath, options.Session);
        var (samples, data) = Samples(kind, options, beforePath);
        var sums = probes.ToDictionary(p => p, p => new ErrorSums(p.Item2));
        var byName = names.Select(n => sums.Where(kv => kv.Key.Item1 == n).Select(kv => kv.Value).ToList()).ToList();
        var inputs = compared.Select(t => t.Input).ToHashSet(StringComparer.Ordinal);
        var reducers = new Dictionary<int, TensorReducer>();
        for (int s = 0; s < samples.Count; s++)
        {
            cancel.ThrowIfCancellationRequested();
            var x = RunOnce(a.Session, samples[s], names, beforePath);
            var y = RunOnce(b.Session, samples[s], names, afterPath);
            for (int i = 0; i < names.Count; i++)
            {
                foreach (var sum in byName[i])
                    sum.Add(x[i].Values, y[i].Values, x[i].Channels);
                if (inputs.Contains(names[i]))
                {
                    if (!reducers.TryGetValue(i, out var reducer))
                        reducers[i] = reducer = new TensorReducer(names[i], x[i].Channels, 0, 0);
                    reducer.Add(x[i].Values);
                }
            }
            progress?.Report((s + 1, samples.Count));
        }
        var linears = compared.Select(t => sums[(t.Tensor, t.PerChannelScale)].ToError(t.Linear, t.Tensor) with
            {
                InputError = sums.GetValueOrDefault((t.Input, t.InputPerChannelScale))?.ToError(t.Linear, t.Input).RelativeError,
            })
            .OrderByDescending(e => e.AddedError).ToList();
        return new NumericDiffReport(linears, sums[(output, false)].ToError("(model output)", output), kind, samples.Count, data, a.Device, clock.Elapsed)
        {
            NotCompared = tensors.Except(compared).Select(t => t.Linear).ToList(),
            InputStats = new CalibrationStats("", new CalibrationInfo { Samples = samples.Count, SequenceLength = samples.Max(x => x.Length), Data = data },
                reducers.Values.Where(r => r.Rows > 0).Select(r => r.ToStats())),
        };
    }

    // The task and the output to compare from the original's graph (docs/architecture.md, "Task from structure"), as eval and verification do.
    private static (ModelTask, string) Classify(OnnxModel model, string label)
    {
        var verdict = ModelTaskDetection.Detect(model.Graph);
        return (verdict.Task, verdict.Output ?? throw new OnnxQuantException(label,
            $"has neither an output over the vocabulary nor a [batch, sequence, hidden] output ({verdict.Evidence}), so there is no text to run it on", ExitCode.Unsupported));
    }

    private static bool Computes(OnnxModel model, string tensor) => model.Graph.Producer(tensor) is not null;

    private static OpenedSession Open(OnnxModel model, IReadOnlyList<string> outputs, string label, SessionSettings settings)
    {
        var recording = new RecordingModel(model);
        return SessionFactory.Open(recording.Serialize(outputs), settings, recording.ExternalDataFolder, label);
    }

    private static (List<int[]> Samples, string Data) Samples(ModelTask kind, NumericDiffOptions options, string modelPath)
    {
        if (options.Samples is <= 0)
            throw new OnnxQuantException(null, $"--samples must be at least 1 (got {options.Samples})", ExitCode.Usage);
        if (options.DataPaths.Count > 0 || kind == ModelTask.CausalLm)
        {
            var paths = options.DataPaths.Count > 0 ? options.DataPaths : [HeldOutText.FindDefault()];
            var data = CalibrationData.Load(new DataOptions
            {
                Paths = paths,
                TokenizerPath = options.TokenizerPath,
                Samples = options.Samples ?? DefaultWindows,
                SequenceLength = options.SequenceLength,
            }, modelPath);
            return (data.Samples.ToList(), data.Description);
        }
        string text = HeldOutText.FindDefault();
        var tokenizer = TokenizerLoader.Load(options.TokenizerPath, modelPath, RunStage.Diff);
        return (HeldOutText.SentenceSamples(text, tokenizer, options.Samples ?? DefaultSentences, options.SequenceLength), Path.GetFileName(text));
    }

    private static (float[] Values, int Channels)[] RunOnce(InferenceSession session, int[] ids, IReadOnlyList<string> outputs, string label)
    {
        var (names, values) = InputFeeds.Build(session.InputMetadata, [ids], label, RunStage.Diff);
        try
        {
            using var runOptions = new RunOptions();
            using var results = session.Run(runOptions, names, values, outputs);
            var arrays = new (float[], int)[results.Count];
            for (int i = 0; i < results.Count; i++)
            {
                var info = results[i].GetTensorTypeAndShape();
                var type = info.ElementDataType;
                int channels = info.Shape.Length == 0 ? 1 : (int)Math.Max(1, info.Shape[^1]);
                arrays[i] = (type switch
                {
                    TensorElementType.Float => results[i].GetTensorDataAsSpan<float>().ToArray(),
                    TensorElementType.Float16 => EvalSession.ToFloats(results[i].GetTensorDataAsSpan<Float16>()),
                    _ => throw new OnnxQuantException(label, $"tensor '{outputs[i]}' is {type}, not float", ExitCode.Unsupported),
                }, channels);
            }
            return arrays;
        }
        catch (OnnxRuntimeException e)
        {
            throw OrtFailures.Translate(e, label, RunStage.Diff, ids.Length, "a sample");
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    // Sums over all samples, so the relative error weighs every value alike. With a per-channel fit, per channel j:
    // c_j = sum(a·b) / sum(a²) minimises sum((c_j·a - b)²), whose minimum is sum(b²) - sum(a·b)² / sum(a²).
    private sealed class ErrorSums(bool perChannel)
    {
        private double _reference, _difference, _max;
        private double[] _bb = [], _ab = [], _aa = [];

        public void Add(float[] before, float[] after, int channels)
        {
            if (before.Length != after.Length)
                throw new InvalidOperationException($"tensor sizes differ: {before.Length} vs {after.Length}");
            if (perChannel)
            {
                if (_bb.Length == 0)
                    (_bb, _ab, _aa) = (new double[channels], new double[channels], new double[channels]);
                for (int i = 0; i < before.Length; i++)
                {
                    int j = i % channels;
                    _bb[j] += (double)before[i] * before[i];
                    _ab[j] += (double)before[i] * after[i];
                    _aa[j] += (double)after[i] * after[i];
                }
                return;
            }
            for (int i = 0; i < before.Length; i++)
            {
                double d = after[i] - before[i];
                _reference += (double)before[i] * before[i];
                _difference += d * d;
                _max = Math.Max(_max, Math.Abs(d));
            }
        }

        public TensorError ToError(string linear, string tensor)
        {
            if (perChannel)
                FitChannels();
            return new(linear, tensor, _reference > 0 ? Math.Sqrt(_difference / _reference) : Math.Sqrt(_difference), perChannel ? null : _max, perChannel);
        }

        private void FitChannels()
        {
            for (int j = 0; j < _bb.Length; j++)
            {
                _reference += _bb[j];
                _difference += Math.Max(0, _bb[j] - (_aa[j] > 0 ? _ab[j] * _ab[j] / _aa[j] : 0));
            }
        }
    }
}
