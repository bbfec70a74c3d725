using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Evaluation;
using OnnxQuant.Calibrate.Recording;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.IO;
using OnnxQuant.Passes;

namespace OnnxQuant.Calibrate.BlockEvaluation;

/// <summary>
/// Mixed precision's model-output sensitivity with ONNX Runtime: one session over the whole model in which the probed
/// linears' weights are also graph inputs (an initializer listed as an input is a default the caller may override), so
/// each probe feeds one replaced weight and leaves every other at its initializer. What is measured is what
/// verification compares: a causal LM's logits, an encoder's mean-pooled embedding (the hidden state averaged over each
/// window's tokens), on a few calibration windows.
/// </summary>
public sealed class OrtOutputProbe : IOutputErrorProbe
{
    private readonly IReadOnlyList<int[]> _windows;
    private readonly SessionSettings _session;

    /// <param name="windows">Token windows to run, all one length (a few hundred tokens in all keeps each probe cheap).</param>
    public OrtOutputProbe(IReadOnlyList<int[]> windows, SessionSettings session)
    {
        if (windows.Count == 0 || windows.Any(w => w.Length != windows[0].Length || w.Length == 0))
            throw new ArgumentException("the output probe needs at least one window, all of one non-zero length");
        _windows = windows;
        _session = session;
    }

    public IOutputErrorSession Open(OnnxModel model, IReadOnlyList<LinearNode> linears)
    {
        string label = model.SourcePath ?? model.Graph.Name;
        var verdict = ModelTaskDetection.Detect(model.Graph);
        string output = verdict.Output
            ?? throw new OnnxQuantException(label, "has no logits or hidden-state output to measure mixed precision's model-output sensitivity on; "
                + "measure each linear's own output instead (--sensitivity linear, a recipe's bits-plan \"sensitivity\": \"linear\")", ExitCode.Unsupported);
        var proto = SessionProto.Build(model, out var folder);
        var inputs = new HashSet<string>(proto.Graph.Input.Select(i => i.Name), StringComparer.Ordinal);
        foreach (var weight in linears.Select(l => l.WeightName).Distinct(StringComparer.Ordinal).Where(w => !inputs.Contains(w)))
        {
            var stored = model.Graph.GetConstant(weight)
                ?? throw new InvalidOperationException($"linear weight '{weight}' is not a constant");
            proto.Graph.Input.Add(BlockModel.Info(weight, (int)stored.DataType, stored.Shape));
        }
        // Only the measured output: ORT neither computes nor keeps the others (present KV, pooled outputs).
        var kept = proto.Graph.Output.Where(o => o.Name == output).ToList();
        proto.Graph.Output.Clear();
        proto.Graph.Output.AddRange(kept);
        // IR version 4 is the first where an initializer need not be an input, and so may be one without being fixed.
        proto.IrVersion = Math.Max(proto.IrVersion, 4);
        return new OrtOutputSession(SessionFactory.Open(SessionProto.WithGraph(proto, proto.Graph), _session, folder, label), output,
            verdict.Task == ModelTask.Encoder, linears, _windows, label);
    }
}

internal sealed class OrtOutputSession : IOutputErrorSession
{
    private readonly OpenedSession _session;
    private readonly List<string> _names;
    private readonly List<OrtValue> _values;
    private readonly float[] _reference;
    private readonly double _referenceEnergy;
    private readonly bool _pooled;
    private readonly int _windows;
    private readonly string _output;

    public OrtOutputSession(OpenedSession session, string output, bool pooled, IReadOnlyList<LinearNode> linears, IReadOnlyList<int[]> windows, string label)
    {
        _session = session;
        Output = pooled ? $"mean-pooled '{output}'" : output;
        _output = output;
        _pooled = pooled;
        _windows = windows.Count;
        var weights = new HashSet<string>(linears.Select(l => l.WeightName), StringComparer.Ordinal);
        try
        {
            var data = session.Session.InputMetadata.Where(m => !weights.Contains(m.Key)).ToDictionary(m => m.Key, m => m.Value);
            (_names, _values) = InputFeeds.Build(data, windows, label);
            _reference = Run(null);
            _referenceEnergy = TensorPrimitives.SumOfSquares(_reference);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Output { get; }

    public double RelativeError(LinearNode linear, float[] weightKN)
    {
        using var weight = BlockModel.FromTensor(linear.MakeWeight(weightKN));
        var output = Run((linear.WeightName, weight));
        TensorPrimitives.Subtract(output, _reference, output);
        double error = TensorPrimitives.SumOfSquares(output);
        return _referenceEnergy > 0 ? error / _referenceEnergy : error;
    }

    private float[] Run((string Name, OrtValue Value)? replaced)
    {
        var names = new List<string>(_names);
        var values = new List<OrtValue>(_values);
        if (replaced is { } r)
        {
            names.Add(r.Name);
            values.Add(r.Value);
        }
        using var runOptions = new RunOptions();
        using var outputs = _session.Session.Run(runOptions, names, values, [_output]);
        var result = BlockModel.ToFloats(outputs[0]);
        return _pooled ? MeanOverTokens(result, outputs[0].GetTensorTypeAndShape().Shape) : result;
    }

    // [windows, tokens, width] -> [windows, width]: the sentence embedding an encoder's users compare (eval's pooling).
    private float[] MeanOverTokens(float[] hidden, long[] shape)
    {
        int width = (int)shape[^1], tokens = hidden.Length / _windows / width;
        var pooled = new float[_windows * width];
        for (int w = 0; w < _windows; w++)
            ComparisonMetrics.MeanPool(hidden.AsSpan(w * tokens * width, tokens * width), tokens, width).CopyTo(pooled, w * width);
        return pooled;
    }

    public void Dispose()
    {
        _session.Dispose();
        if (_values is not null)
            foreach (var v in _values) v.Dispose();
    }
}
