using Microsoft.ML.OnnxRuntime;
using OnnxQuant.Awq;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Calibrate.Recording;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.IO;
using OnnxQuant.Smoothing;

namespace OnnxQuant.Calibrate.BlockEvaluation;

/// <summary>
/// AWQ's block loss with ONNX Runtime: for each group that feeds a block (<see cref="BlockSubgraph"/>), the model is run
/// once on a few calibration windows to record the block's inputs (the activation and side inputs such as masks and
/// rotary tables) — block by block up to that block when the graph splits (<see cref="LayerSplit"/>) — then a small model of the block alone, whose consumer weights are inputs, is run per candidate.
/// Whole windows are used, not sampled tokens: attention mixes the tokens of a sequence.
/// </summary>
public sealed class OrtBlockEvaluator : IBlockEvaluator
{
    private readonly IReadOnlyList<int[]> _windows;
    private readonly SessionSettings _session;

    /// <param name="windows">Token windows to run (a few hundred tokens in all keeps each candidate cheap).</param>
    public OrtBlockEvaluator(IReadOnlyList<int[]> windows, SessionSettings session)
    {
        if (windows.Count == 0 || windows.Any(w => w.Length != windows[0].Length || w.Length == 0))
            throw new ArgumentException("the block loss needs at least one window, all of one non-zero length");
        _windows = windows;
        _session = session;
    }

    /// <summary>Groups for which a block was found and run (for reports).</summary>
    public int BlocksEvaluated { get; private set; }

    public IBlockLoss? TryCreate(OnnxModel model, SmoothingGroup group)
    {
        var block = BlockSubgraph.Find(model.Graph, group);
        if (block is null)
            return null;
        string label = model.SourcePath ?? model.Graph.Name;
        var graphInputs = block.SideInputs.Where(model.Graph.IsGraphInput).ToList();
        var recorded = new List<string> { block.Activation };
        recorded.AddRange(block.SideInputs.Where(s => !model.Graph.IsGraphInput(s)));

        var values = Record(model, recorded, label);
        try
        {
            var loss = new OrtBlockLoss(model, block, recorded, values, graphInputs, _windows, _session, label);
            BlocksEvaluated++;
            return loss;
        }
        catch
        {
            foreach (var v in values) v.Dispose();
            throw;
        }
    }

    // Runs the model on all windows as one batch and keeps the named outputs: block by block when the graph splits
    // (ORT holds one block's weights at a time, and only the blocks up to the one asked for run), else pruned whole.
    private List<OrtValue> Record(OnnxModel model, List<string> names, string label)
    {
        var split = LayerSplit.Find(model, names);
        if (split.CanSplit)
        {
            try
            {
                return RecordBlockwise(model, split.Segments!, names, label);
            }
            catch (LayerwiseFailure)
            {
                // The whole graph below reports ORT's failure in its own terms (or works).
            }
        }
        return RecordWhole(model, names, label);
    }

    private List<OrtValue> RecordBlockwise(OnnxModel model, IReadOnlyList<Segment> segments, List<string> names, string label)
    {
        var windows = new CalibrationDataset(_windows, _windows[0].Length, "block-loss windows", "none");
        var models = new SegmentModels(model);
        var wanted = new HashSet<string>(names, StringComparer.Ordinal);
        var kept = new Dictionary<string, OrtValue>(StringComparer.Ordinal);
        var types = new Dictionary<string, (int ElementType, int Rank)>(StringComparer.Ordinal);
        // A few windows: the carried values stay in memory.
        using var carried = new CarriedValues(long.MaxValue, Path.GetTempPath());
        try
        {
            foreach (var segment in segments)
            {
                var outputs = SegmentModels.Outputs(segment);
                using var opened = SessionFactory.Open(models.Serialize(segment, types), _session, models.ExternalDataFolder, label);
                var graphInputs = opened.Session.InputMetadata.Where(kv => segment.GraphInputs.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value);
                using var runOptions = new RunOptions();
                using var results = LayerwiseCalibrator.RunBatch(opened.Session, runOptions, segment, graphInputs, carried, windows, 0, 0, [.. _windows], outputs, label);
                for (int i = 0; i < outputs.Count; i++)
                {
                    if (segment.CarriedOut.Contains(outputs[i]))
                        carried.Put(0, outputs[i], results[i]);
                    if (wanted.Contains(outputs[i]))
                        kept[outputs[i]] = BlockModel.Copy(results[i]);
                }
                if (kept.Count == wanted.Count)
                    break; // the blocks after the one asked for need not run
                foreach (var name in segment.CarriedOut)
                    types[name] = carried.TypeOf(name);
                foreach (var name in segment.CarriedIn.Where(n => segments.Skip(segment.Index + 1).All(s => !s.CarriedIn.Contains(n))))
                    carried.Drop(name);
            }
            return names.Select(n => kept[n]).ToList();
        }
        catch
        {
            foreach (var v in kept.Values) v.Dispose();
            throw;
        }
    }

    private List<OrtValue> RecordWhole(OnnxModel model, List<string> names, string label)
    {
        var recording = new RecordingModel(model);
        using var opened = SessionFactory.Open(recording.Serialize(names), _session, recording.ExternalDataFolder, label);
        var (inputNames, inputValues) = InputFeeds.Build(opened.Session.InputMetadata, _windows, label);
        try
        {
            using var runOptions = new RunOptions();
            using var outputs = opened.Session.Run(runOptions, inputNames, inputValues, names);
            // Detach the values from the collection so they outlive it.
            var kept = new List<OrtValue>();
            foreach (var o in outputs)
                kept.Add(BlockModel.Copy(o));
            return kept;
        }
        finally
        {
            foreach (var v in inputValues) v.Dispose();
        }
    }
}
