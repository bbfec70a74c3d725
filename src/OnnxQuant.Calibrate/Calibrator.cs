using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Calibrate.Recording;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.IO;
using OnnxQuant.Statistics;

namespace OnnxQuant.Calibrate;

/// <summary>Knobs of a calibration run (the data itself comes as a <see cref="CalibrationDataset"/>).</summary>
public sealed record CalibrationOptions
{
    /// <summary>Samples per inference run.</summary>
    public int BatchSize { get; init; } = 1;

    /// <summary>
    /// Most bytes the recorded activations may take. Two batches are alive at once (one reduced while the next runs),
    /// so one batch gets half; above that the tensors are recorded in several runs over subsets of them.
    /// </summary>
    public long MaxMemoryBytes { get; init; } = 2L << 30;

    /// <summary>Rows (tokens) kept per tensor for AWQ's search.</summary>
    public int SampleRowsPerTensor { get; init; } = 512;

    /// <summary>Seeds the row reservoir; recorded in the statistics with the data's seed.</summary>
    public int Seed { get; init; }

    /// <summary>Which activations to record; null records the input of every quantizable MatMul/Gemm.</summary>
    public IReadOnlyList<string>? Tensors { get; init; }

    /// <summary>Block by block (the default, when the graph splits) or one session over the whole graph.</summary>
    public CalibrationSessions Sessions { get; init; } = CalibrationSessions.Layers;

    /// <summary>Where values carried between blocks spill beyond half of <see cref="MaxMemoryBytes"/>; null: the temp folder.</summary>
    public string? SpillFolder { get; init; }
}

/// <summary>How calibration runs the model.</summary>
public enum CalibrationSessions
{
    /// <summary>
    /// One small session per attention/MLP block, in order, so ONNX Runtime holds one block's weights at a time; a graph
    /// that cannot be split runs whole, with a notice.
    /// </summary>
    Layers,

    /// <summary>One session over the whole graph (pruned to what the recorded tensors need).</summary>
    WholeGraph,

    /// <summary>
    /// <see cref="WholeGraph"/> when the model's weights as a session holds them are a small fraction of the memory
    /// available (block sessions then only add their own overhead: 177 -> 367 MiB on a 2-layer model), else
    /// <see cref="Layers"/> (<see cref="CalibrationSplit"/>). The commands' default.
    /// </summary>
    Auto,
}

/// <summary>Progress after each batch; the CLI draws it, the library only reports it.</summary>
public sealed record CalibrationProgress(int Run, int Runs, int SamplesDone, int SamplesTotal, long TokensDone, TimeSpan Elapsed);

/// <summary>The statistics plus how the run went.</summary>
/// <param name="SessionTime">Of <paramref name="Elapsed"/>, the time spent building the recording copies and loading their sessions.</param>
/// <param name="InferenceTime">Of <paramref name="Elapsed"/>, the time spent inside ONNX Runtime's Run.</param>
/// <param name="ReductionTime">The time the reductions took; they overlap the next batch's inference.</param>
/// <param name="ReductionWait">Of <paramref name="Elapsed"/>, the time inference waited for a reduction to finish.</param>
public sealed record CalibrationResult(CalibrationStats Stats, string Device, string? Notice, int Runs, long Tokens, TimeSpan Elapsed,
    TimeSpan SessionTime, TimeSpan InferenceTime, TimeSpan ReductionTime, TimeSpan ReductionWait)
{
    /// <summary>ONNX Runtime sessions the model was split into (1: the whole graph).</summary>
    public int Sessions { get; init; } = 1;

    /// <summary>Bytes of values carried between block sessions that went to the scratch file (0 when all fit the budget).</summary>
    public long CarriedSpillBytes { get; init; }

    /// <summary>Calibration tokens per second of wall time (each token counted once, however many runs).</summary>
    public double TokensPerSecond => Tokens / Math.Max(1e-9, Elapsed.TotalSeconds);
}

/// <summary>What one way of running calibration reports back.</summary>
internal sealed record RunTotals(string Device, string? Notice, int Runs, int Sessions, TimeSpan SessionTime, TimeSpan InferenceTime,
    TimeSpan ReductionTime, TimeSpan ReductionWait)
{
    public long SpillBytes { get; init; }
}

/// <summary>
/// Runs the model on calibration windows and reduces the inputs of its quantizable linears to
/// <see cref="ActivationStats"/> batch by batch. When one batch's recorded tensors would exceed the memory budget the
/// tensors are split into groups, each recorded by its own pruned copy of the model over all samples. By default the graph
/// is first split into its blocks and run block by block (<see cref="LayerwiseCalibrator"/>); the statistics are the same.
/// </summary>
public static class Calibrator
{
    public static CalibrationResult Run(OnnxModel model, CalibrationDataset data, CalibrationOptions options, SessionSettings session,
        IProgress<CalibrationProgress>? progress = null, CancellationToken cancel = default)
    {
        string label = model.SourcePath ?? model.Graph.Name;
        ModelChecks.EnsureComputable(model);
        var tensors = SelectTensors(model, options, label);
        if (data.Samples.Count == 0)
            throw new OnnxQuantException(label, "there are no calibration samples");
        var clock = Stopwatch.StartNew();
        var names = tensors.Select(t => t.Name).ToList();
        RunTotals totals;
        Dictionary<string, TensorReducer> reducers;
        string? splitNotice = null;
        var sessions = options.Sessions == CalibrationSessions.Auto ? CalibrationSplit.Choose(model, CalibrationSplit.AvailableBytes()) : options.Sessions;
        var split = sessions == CalibrationSessions.Layers ? LayerSplit.Find(model, names) : null;
        if (split is { CanSplit: true })
        {
            try
            {
                reducers = NewReducers(tensors, options);
                totals = LayerwiseCalibrator.Run(model, split.Segments!, data, options, session, reducers, clock, progress, cancel);
            }
            catch (LayerwiseFailure e)
            {
                // The split graph failed where ORT ran; the whole graph reports the failure in its own terms (or works).
                splitNotice = $"{label}: ONNX Runtime failed on block session {e.Segment + 1} of {split.Segments!.Count}; calibrating with one whole-graph session";
                reducers = NewReducers(tensors, options);
                totals = RunWholeGraph(model, data, options, session, tensors, reducers, clock, label, progress, cancel);
            }
        }
        else
        {
            if (split is not null)
                splitNotice = $"{label} cannot be split into blocks ({split.Reason}); calibrating with one whole-graph session";
            reducers = NewReducers(tensors, options);
            totals = RunWholeGraph(model, data, options, session, tensors, reducers, clock, label, progress, cancel);
        }
        var info = new CalibrationInfo
        {
            Samples = data.Samples.Count,
            SequenceLength = data.SequenceLength,
            Seed = options.Seed,
            Data = data.Description,
            Tokenizer = data.TokenizerDescription,
        };
        var stats = new CalibrationStats(ModelFingerprint.Compute(model.Graph), info, reducers.Values.Select(r => r.ToStats()));
        StatsChecks.EnsureFinite(stats, label,
            "the model computes NaN/Inf on the calibration data (NaN or Inf weights, or an overflow), so its statistics would be meaningless. Check the weights with `onnxquant inspect` and the model in ONNX Runtime");
        string? notice = string.Join("; ", new[] { splitNotice, totals.Notice }.OfType<string>()) is { Length: > 0 } joined ? joined : null;
        return new CalibrationResult(stats, totals.Device, notice, totals.Runs, data.TotalTokens, clock.Elapsed, totals.SessionTime, totals.InferenceTime,
            totals.ReductionTime, totals.ReductionWait)
        { Sessions = totals.Sessions, CarriedSpillBytes = totals.SpillBytes };
    }

    private static Dictionary<string, TensorReducer> NewReducers(List<RecordedTensor> tensors, CalibrationOptions options) =>
        tensors.ToDictionary(t => t.Name, t => new TensorReducer(t.Name, t.Channels, options.SampleRowsPerTensor, (ulong)options.Seed), StringComparer.Ordinal);

    // One session over the whole (pruned) graph; tensor groups over the memory budget get a run each.
    private static RunTotals RunWholeGraph(OnnxModel model, CalibrationDataset data, CalibrationOptions options, SessionSettings session,
        List<RecordedTensor> tensors, Dictionary<string, TensorReducer> reducers, Stopwatch clock, string label,
        IProgress<CalibrationProgress>? progress, CancellationToken cancel)
    {
        int batch = Math.Max(1, Math.Min(options.BatchSize, data.Samples.Count));
        // Two batches' outputs are alive at once (one reduced while the next is computed): each gets half the budget.
        var groups = RecordedTensor.Partition(tensors, (long)batch * data.SequenceLength, options.MaxMemoryBytes / 2);
        var recording = new RecordingModel(model);
        var inferenceTime = TimeSpan.Zero;
        var reduceWait = TimeSpan.Zero;
        long reduceTicks = 0;
        var sessionTime = clock.Elapsed;
        string device = "cpu";
        string? notice = null;
        int totalSteps = groups.Count * data.Samples.Count, stepsDone = 0;
        for (int g = 0; g < groups.Count; g++)
        {
            var names = groups[g].Select(t => t.Name).ToList();
            var opening = clock.Elapsed;
            using var opened = SessionFactory.Open(recording.Serialize(names), session, recording.ExternalDataFolder, label);
            sessionTime += clock.Elapsed - opening;
            (device, notice) = (opened.Device, notice ?? opened.Notice);
            using var runOptions = new RunOptions();
            // Ctrl-C stops a long run in ONNX Runtime too, not only between samples.
            using var terminate = cancel.Register(() => runOptions.Terminate = true);
            // While ORT runs batch t+1, batch t's outputs are reduced on the thread pool: the reduction hides behind
            // inference (on a GPU entirely; on a CPU in ORT's idle moments). One reduction at a time keeps the order,
            // so the statistics do not depend on timing.
            Task? reducing = null;
            IDisposable? reducingOutputs = null;
            try
            {
                for (int start = 0; start < data.Samples.Count; start += batch)
                {
                    cancel.ThrowIfCancellationRequested();
                    var samples = data.Samples.Skip(start).Take(batch).ToList();
                    var outputs = RunBatch(opened.Session, runOptions, data, start, samples, names, label, cancel);
                    inferenceTime += outputs.Elapsed;
                    var types = CheckOutputs(outputs.Values, names, reducers);
                    var waiting = clock.Elapsed;
                    Finish(reducing);
                    reduceWait += clock.Elapsed - waiting;
                    reducingOutputs?.Dispose();
                    reducingOutputs = outputs.Values;
                    reducing = Task.Run(() =>
                    {
                        var timer = Stopwatch.StartNew();
                        Reduce(outputs.Values, names, types, reducers, session.Threads);
                        reduceTicks += timer.Elapsed.Ticks;
                    });
                    stepsDone += samples.Count;
                    progress?.Report(new CalibrationProgress(g + 1, groups.Count, stepsDone, totalSteps,
                        (long)stepsDone * data.SequenceLength / groups.Count, clock.Elapsed));
                }
                var last = clock.Elapsed;
                Finish(reducing);
                reduceWait += clock.Elapsed - last;
                reducing = null;
            }
            finally
            {
                if (reducing is not null)
                    try { reducing.Wait(); } catch (AggregateException) { } // already failing: just let it end before disposing
                reducingOutputs?.Dispose();
            }
        }
        return new RunTotals(device, notice, groups.Count, 1, sessionTime, inferenceTime, new TimeSpan(reduceTicks), reduceWait);
    }

    private static List<RecordedTensor> SelectTensors(OnnxModel model, CalibrationOptions options, string label)
    {
        var all = RecordedTensor.FindAll(model.Graph);
        if (all.Count == 0)
            throw new OnnxQuantException(label, "has no MatMul or Gemm with a constant weight, so there is nothing to calibrate", ExitCode.Unsupported);
        if (options.Tensors is null)
            return all;
        var byName = all.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var unknown = options.Tensors.Where(n => !byName.ContainsKey(n)).ToList();
        if (unknown.Count > 0)
            throw new OnnxQuantException(label, $"{string.Join(", ", unknown.Select(n => $"'{n}'"))} is not the input of a quantizable MatMul/Gemm");
        return options.Tensors.Distinct().Select(n => byName[n]).ToList();
    }

    internal sealed record BatchOutputs(IDisposableReadOnlyCollection<OrtValue> Values, TimeSpan Elapsed);

    internal static BatchOutputs RunBatch(InferenceSession session, RunOptions runOptions, CalibrationDataset data, int start, List<int[]> samples,
        List<string> names, string label, CancellationToken cancel)
    {
        var (inputNames, inputValues) = data.Feeds is { } feeds
            ? feeds.Build(session.InputMetadata, start, samples.Count, label)
            : InputFeeds.Build(session.InputMetadata, samples, label);
        try
        {
            var timer = Stopwatch.StartNew();
            var outputs = session.Run(runOptions, inputNames, inputValues, names);
            return new BatchOutputs(outputs, timer.Elapsed);
        }
        catch (OnnxRuntimeException) when (runOptions.Terminate)
        {
            throw new OperationCanceledException("calibration was interrupted");
        }
        catch (OnnxRuntimeException e)
        {
            // The first sample failing on shapes, on a model whose structure showed no limit: find the limit by trying.
            if (start == 0 && data.Feeds is null && OrtFailures.Classify(e.Message) is OrtFailureKind.SequenceTooLong or OrtFailureKind.IndexOutOfRange
                && ContextProbe.Longest(session, names, samples[0][0], samples[0].Length, label, cancel) is { } longest)
                throw new ContextTooLongException(label, new ContextLimit(longest, ContextLimitSource.Probe, label), samples[0].Length, RunStage.Calibration, e);
            throw OrtFailures.Translate(e, label, RunStage.Calibration, data.Feeds is null ? samples[0].Length : 0, $"calibration sample {start + 1}");
        }
        finally
        {
            foreach (var v in inputValues) v.Dispose();
        }
    }

    // Checked before the reduction starts: an exception from the thread pool would reach the user wrapped.
    internal static TensorElementType[] CheckOutputs(IReadOnlyList<OrtValue> outputs, List<string> names, Dictionary<string, TensorReducer> reducers)
    {
        var types = new TensorElementType[outputs.Count];
        for (int i = 0; i < outputs.Count; i++)
        {
            var info = outputs[i].GetTensorTypeAndShape();
            int channels = reducers[names[i]].Channels;
            if (info.Shape.Length == 0 || info.Shape[^1] != channels)
                throw new OnnxQuantException(null, $"recorded tensor '{names[i]}' has shape [{string.Join(",", info.Shape)}], but the MatMul reading it has {channels} input channels", ExitCode.Unsupported);
            if (info.ElementDataType is not (TensorElementType.Float or TensorElementType.Float16 or TensorElementType.BFloat16))
                throw new OnnxQuantException(null, $"recorded tensor '{names[i]}' is {info.ElementDataType}, not a float type", ExitCode.Unsupported);
            types[i] = info.ElementDataType;
        }
        return types;
    }

    internal static void Finish(Task? reduction)
    {
        if (reduction is null)
            return;
        try
        {
            reduction.Wait();
        }
        catch (AggregateException e) when (e.InnerExceptions.Count == 1)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
    }

    internal static void Reduce(IReadOnlyList<OrtValue> outputs, List<string> names, TensorElementType[] types, Dictionary<string, TensorReducer> reducers, int threads)
    {
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = threads > 0 ? threads : Environment.ProcessorCount };
        Parallel.For(0, outputs.Count, parallel, () => Array.Empty<float>(), (i, _, buffer) =>
        {
            var reducer = reducers[names[i]];
            if (types[i] == TensorElementType.Float)
                reducer.Add(outputs[i].GetTensorDataAsSpan<float>());
            else
                buffer = AddConverted(outputs[i], types[i], reducer, buffer);
            return buffer;
        }, _ => { });
    }

    // Converts 16-bit floats in row chunks so the reducer always sees float32 without a full-size copy.
    private static float[] AddConverted(OrtValue value, TensorElementType type, TensorReducer reducer, float[] buffer)
    {
        var raw = MemoryMarshal.Cast<byte, ushort>(value.GetTensorDataAsSpan<byte>());
        int chunkRows = Math.Max(1, 8192 / reducer.Channels);
        int chunk = chunkRows * reducer.Channels;
        if (buffer.Length < chunk)
            buffer = new float[chunk];
        for (int offset = 0; offset < raw.Length; offset += chunk)
        {
            var src = raw.Slice(offset, Math.Min(chunk, raw.Length - offset));
            var dst = buffer.AsSpan(0, src.Length);
            if (type == TensorElementType.Float16)
                System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<ushort, Half>(src), dst);
            else
                for (int j = 0; j < src.Length; j++)
                    dst[j] = OnnxQuant.IR.FloatCodec.FromBFloat16(src[j]);
            reducer.Add(dst);
        }
        return buffer;
    }
}
