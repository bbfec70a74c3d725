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

    /// <summary>Most bytes one batch's recorded activations may take; above it the tensors are recorded in several runs.</summary>
    public long MaxMemoryBytes { get; init; } = 2L << 30;

    /// <summary>Rows (tokens) kept per tensor for AWQ's search.</summary>
    public int SampleRowsPerTensor { get; init; } = 512;

    /// <summary>Seeds the row reservoir; recorded in the statistics with the data's seed.</summary>
    public int Seed { get; init; }

    /// <summary>Which activations to record; null records the input of every quantizable MatMul/Gemm.</summary>
    public IReadOnlyList<string>? Tensors { get; init; }
}

/// <summary>Progress after each batch; the CLI draws it, the library only reports it.</summary>
public sealed record CalibrationProgress(int Run, int Runs, int SamplesDone, int SamplesTotal, long TokensDone, TimeSpan Elapsed);

/// <summary>The statistics plus how the run went.</summary>
/// <param name="SessionTime">Of <paramref name="Elapsed"/>, the time spent building the recording copies and loading their sessions.</param>
/// <param name="InferenceTime">Of <paramref name="Elapsed"/>, the time spent inside ONNX Runtime's Run.</param>
/// <param name="ReductionTime">Of <paramref name="Elapsed"/>, the time spent reducing recorded activations.</param>
public sealed record CalibrationResult(CalibrationStats Stats, string Device, string? Notice, int Runs, long Tokens, TimeSpan Elapsed,
    TimeSpan SessionTime, TimeSpan InferenceTime, TimeSpan ReductionTime)
{
    /// <summary>Calibration tokens per second of wall time (each token counted once, however many runs).</summary>
    public double TokensPerSecond => Tokens / Math.Max(1e-9, Elapsed.TotalSeconds);
}

/// <summary>
/// Runs the model on calibration windows and reduces the inputs of its quantizable linears to
/// <see cref="ActivationStats"/> batch by batch. When one batch's recorded tensors would exceed the memory budget the
/// tensors are split into groups, each recorded by its own pruned copy of the model over all samples.
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
        int batch = Math.Max(1, Math.Min(options.BatchSize, data.Samples.Count));
        var groups = RecordedTensor.Partition(tensors, (long)batch * data.SequenceLength, options.MaxMemoryBytes);
        var reducers = tensors.ToDictionary(t => t.Name, t => new TensorReducer(t.Name, t.Channels, options.SampleRowsPerTensor, (ulong)options.Seed), StringComparer.Ordinal);
        var clock = Stopwatch.StartNew();
        var recording = new RecordingModel(model);
        var inferenceTime = TimeSpan.Zero;
        var reduceTime = TimeSpan.Zero;
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
            for (int start = 0; start < data.Samples.Count; start += batch)
            {
                cancel.ThrowIfCancellationRequested();
                var samples = data.Samples.Skip(start).Take(batch).ToList();
                var (inputNames, inputValues) = InputFeeds.Build(opened.Session.InputMetadata, samples, label);
                try
                {
                    var running = clock.Elapsed;
                    using var outputs = opened.Session.Run(runOptions, inputNames, inputValues, names);
                    var before = clock.Elapsed;
                    inferenceTime += before - running;
                    Reduce(outputs, names, reducers, groups[g], session.Threads);
                    reduceTime += clock.Elapsed - before;
                }
                catch (OnnxRuntimeException) when (cancel.IsCancellationRequested)
                {
                    throw new OperationCanceledException(cancel);
                }
                catch (OnnxRuntimeException e)
                {
                    throw new OnnxQuantException(label, $"ONNX Runtime failed while running calibration sample {start + 1}: {e.Message.Split('\n')[0]}", ExitCode.Unsupported, e);
                }
                finally
                {
                    foreach (var v in inputValues) v.Dispose();
                }
                stepsDone += samples.Count;
                progress?.Report(new CalibrationProgress(g + 1, groups.Count, stepsDone, totalSteps,
                    (long)stepsDone * data.SequenceLength / groups.Count, clock.Elapsed));
            }
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
        return new CalibrationResult(stats, device, notice, groups.Count, data.TotalTokens, clock.Elapsed, sessionTime, inferenceTime, reduceTime);
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

    private static void Reduce(IReadOnlyList<OrtValue> outputs, List<string> names, Dictionary<string, TensorReducer> reducers, List<RecordedTensor> group, int threads)
    {
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = threads > 0 ? threads : Environment.ProcessorCount };
        Parallel.For(0, outputs.Count, parallel, () => Array.Empty<float>(), (i, _, buffer) =>
        {
            var value = outputs[i];
            var reducer = reducers[names[i]];
            var info = value.GetTensorTypeAndShape();
            var shape = info.Shape;
            if (shape.Length == 0 || shape[^1] != reducer.Channels)
                throw new OnnxQuantException(null, $"recorded tensor '{names[i]}' has shape [{string.Join(",", shape)}], but its MatMul weight has {reducer.Channels} input channels", ExitCode.Unsupported);
            switch (info.ElementDataType)
            {
                case TensorElementType.Float:
                    reducer.Add(value.GetTensorDataAsSpan<float>());
                    break;
                case TensorElementType.Float16:
                case TensorElementType.BFloat16:
                    buffer = AddConverted(value, info.ElementDataType, reducer, buffer);
                    break;
                default:
                    throw new OnnxQuantException(null, $"recorded tensor '{names[i]}' is {info.ElementDataType}, not a float type", ExitCode.Unsupported);
            }
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
