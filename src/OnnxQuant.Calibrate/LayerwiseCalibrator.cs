using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Calibrate.Recording;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.IO;

namespace OnnxQuant.Calibrate;

/// <summary>ONNX Runtime failed inside one segment of a split graph; the caller falls back to the whole graph.</summary>
internal sealed class LayerwiseFailure(int segment, Exception inner) : Exception($"segment {segment} failed", inner)
{
    public int Segment { get; } = segment;
}

/// <summary>
/// Calibration block by block: the segments of a <see cref="LayerSplit"/> run in order, each in its own session over all
/// the calibration batches, then the session is closed. What a later segment reads (the hidden state after a block, the
/// mask, positions, rotary tables) is kept per batch in <see cref="CarriedValues"/>, in memory up to half the budget and
/// on disk beyond. ONNX Runtime thus holds one block's weights at a time, whatever the depth. Every tensor still sees
/// its rows in sample order, so the reducers' statistics and reservoirs match a whole-graph run.
/// </summary>
internal static class LayerwiseCalibrator
{
    public static RunTotals Run(OnnxModel model, IReadOnlyList<Segment> segments, CalibrationDataset data, CalibrationOptions options,
        SessionSettings session, Dictionary<string, TensorReducer> reducers, Stopwatch clock, IProgress<CalibrationProgress>? progress, CancellationToken cancel)
    {
        string label = model.SourcePath ?? model.Graph.Name;
        int batch = Math.Max(1, Math.Min(options.BatchSize, data.Samples.Count));
        var opening = clock.Elapsed;
        var models = new SegmentModels(model);
        var sessionTime = clock.Elapsed - opening;
        var lastReader = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var segment in segments)
            foreach (var name in segment.CarriedIn)
                lastReader[name] = segment.Index;
        using var carried = new CarriedValues(options.MaxMemoryBytes / 2, options.SpillFolder ?? Path.GetTempPath());
        var types = new Dictionary<string, (int ElementType, int Rank)>(StringComparer.Ordinal);
        var inferenceTime = TimeSpan.Zero;
        long reduceTicks = 0;
        string device = "cpu";
        string? notice = null;
        int totalSteps = segments.Count * data.Samples.Count, stepsDone = 0;
        foreach (var segment in segments)
        {
            var outputs = SegmentModels.Outputs(segment);
            if (outputs.Count == 0)
                continue;
            opening = clock.Elapsed;
            using var opened = SessionFactory.Open(models.Serialize(segment, types), session, models.ExternalDataFolder, label);
            sessionTime += clock.Elapsed - opening;
            (device, notice) = (opened.Device, notice ?? opened.Notice);
            var graphInputs = opened.Session.InputMetadata.Where(kv => segment.GraphInputs.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value);
            var carriedOut = new HashSet<string>(segment.CarriedOut, StringComparer.Ordinal);
            using var runOptions = new RunOptions();
            using var terminate = cancel.Register(() => runOptions.Terminate = true);
            for (int start = 0, index = 0; start < data.Samples.Count; start += batch, index++)
            {
                cancel.ThrowIfCancellationRequested();
                var samples = data.Samples.Skip(start).Take(batch).ToList();
                var timer = Stopwatch.StartNew();
                using var results = RunBatch(opened.Session, runOptions, segment, graphInputs, carried, data, start, index, samples, outputs, label);
                inferenceTime += timer.Elapsed;
                for (int i = 0; i < outputs.Count; i++)
                    if (carriedOut.Contains(outputs[i]))
                        carried.Put(index, outputs[i], results[i]);
                var recorded = results.Take(segment.Recorded.Count).ToList();
                var recordedNames = segment.Recorded.ToList();
                var elementTypes = Calibrator.CheckOutputs(recorded, recordedNames, reducers);
                var reducing = Stopwatch.StartNew();
                Calibrator.Reduce(recorded, recordedNames, elementTypes, reducers, session.Threads);
                reduceTicks += reducing.Elapsed.Ticks;
                stepsDone += samples.Count;
                progress?.Report(new CalibrationProgress(segment.Index + 1, segments.Count, stepsDone, totalSteps,
                    (long)stepsDone * data.SequenceLength / segments.Count, clock.Elapsed));
            }
            foreach (var name in segment.CarriedOut)
                types[name] = carried.TypeOf(name);
            foreach (var (name, last) in lastReader)
                if (last == segment.Index)
                    carried.Drop(name);
        }
        // Reductions run between batches here (not behind the next batch): the time waited is the time they took.
        var reduceTime = new TimeSpan(reduceTicks);
        return new RunTotals(device, notice, 1, segments.Count, sessionTime, inferenceTime, reduceTime, reduceTime) { SpillBytes = carried.SpilledBytes };
    }

    /// <summary>Runs one batch through a segment: graph inputs filled as calibration fills them, carried values from the store.</summary>
    internal static IDisposableReadOnlyCollection<OrtValue> RunBatch(InferenceSession session, RunOptions runOptions, Segment segment,
        Dictionary<string, NodeMetadata> graphInputs, CarriedValues carried, CalibrationDataset data, int start, int index, List<int[]> samples,
        List<string> outputs, string label)
    {
        var (names, values) = graphInputs.Count == 0 ? ([], [])
            : data.Feeds is { } feeds ? feeds.Build(graphInputs, start, samples.Count, label)
            : InputFeeds.Build(graphInputs, samples, label);
        try
        {
            foreach (var name in segment.CarriedIn)
            {
                names.Add(name);
                values.Add(carried.Get(index, name));
            }
            return session.Run(runOptions, names, values, outputs);
        }
        catch (OnnxRuntimeException) when (runOptions.Terminate)
        {
            throw new OperationCanceledException("calibration was interrupted");
        }
        catch (OnnxRuntimeException e)
        {
            throw new LayerwiseFailure(segment.Index, e);
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }
}
