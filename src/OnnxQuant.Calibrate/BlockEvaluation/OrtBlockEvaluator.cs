using Microsoft.ML.OnnxRuntime;
using OnnxQuant.Awq;
using OnnxQuant.Calibrate.Recording;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.IO;
using OnnxQuant.Smoothing;

namespace OnnxQuant.Calibrate.BlockEvaluation;

/// <summary>
/// AWQ's block loss with ONNX Runtime: for each group that feeds a block (<see cref="BlockSubgraph"/>), the model is run
/// once on a few calibration windows to record the block's inputs (the activation and side inputs such as masks and
/// rotary tables), then a small model of the block alone, whose consumer weights are inputs, is run per candidate.
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

    // Runs the model (pruned to what the names need) on all windows as one batch and keeps the outputs.
    private List<OrtValue> Record(OnnxModel model, List<string> names, string label)
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
