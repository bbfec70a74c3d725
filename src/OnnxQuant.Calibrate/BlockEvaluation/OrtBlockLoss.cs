using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using OnnxQuant.Analysis;
using OnnxQuant.Awq;
using OnnxQuant.Calibrate.Recording;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.IO;
using OnnxQuant.Quantization;

namespace OnnxQuant.Calibrate.BlockEvaluation;

/// <summary>
/// One group's block loss: a session over the block model, the recorded inputs, and the block output with the float
/// weights. <see cref="Loss"/> feeds <c>diag(1/s) · Q(diag(s) · W)</c> for each consumer (equivalent to dividing the
/// activation by s and quantizing the scaled weight) and returns the mean squared difference of the block output.
/// </summary>
internal sealed class OrtBlockLoss : IBlockLoss
{
    private readonly OpenedSession _session;
    private readonly BlockSubgraph _block;
    private readonly List<string> _names = new();
    private readonly List<OrtValue> _fixedValues = new();
    private readonly IReadOnlyList<float[]> _weights;
    private readonly float[] _reference;

    public OrtBlockLoss(OnnxModel model, BlockSubgraph block, IReadOnlyList<string> recorded, List<OrtValue> recordedValues,
        IReadOnlyList<string> graphInputs, IReadOnlyList<int[]> windows, SessionSettings settings, string label)
    {
        _block = block;
        _names.AddRange(recorded);
        _fixedValues.AddRange(recordedValues);
        try
        {
            _session = SessionFactory.Open(BlockModel.Serialize(model, block, recorded, recordedValues), settings, null, label);
            if (graphInputs.Count > 0)
            {
                var meta = _session.Session.InputMetadata.Where(m => graphInputs.Contains(m.Key)).ToDictionary(m => m.Key, m => m.Value);
                var (names, values) = InputFeeds.Build(meta, windows, label);
                _names.AddRange(names);
                _fixedValues.AddRange(values);
            }
            _weights = block.Consumers.Select(c => c.ReadWeightKN(model.Graph)).ToList();
            _reference = Run(_weights);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Description => _block.Description;

    public double Loss(float[] scales, Int4QuantOptions quantization)
    {
        var candidates = new List<float[]>();
        for (int c = 0; c < _block.Consumers.Count; c++)
        {
            var consumer = _block.Consumers[c];
            var w = _weights[c];
            var q = new float[w.Length];
            int n = consumer.N;
            for (int j = 0; j < consumer.K; j++)
                TensorPrimitives.Multiply(w.AsSpan(j * n, n), scales[j], q.AsSpan(j * n, n));
            Int4BlockQuantizer.FakeQuantizeInPlace(q, consumer.K, n, quantization with { ScaleType = consumer.WeightType });
            for (int j = 0; j < consumer.K; j++)
                TensorPrimitives.Divide(q.AsSpan(j * n, n), scales[j], q.AsSpan(j * n, n));
            candidates.Add(q);
        }
        var output = Run(candidates);
        var diff = new float[output.Length];
        TensorPrimitives.Subtract(output, _reference, diff);
        return TensorPrimitives.SumOfSquares(diff) / diff.Length;
    }

    private float[] Run(IReadOnlyList<float[]> weights)
    {
        var names = new List<string>(_names);
        var values = new List<OrtValue>(_fixedValues);
        var owned = new List<OrtValue>();
        try
        {
            for (int c = 0; c < _block.Consumers.Count; c++)
            {
                LinearNode consumer = _block.Consumers[c];
                var value = BlockModel.FromTensor(consumer.MakeWeight(weights[c]));
                owned.Add(value);
                names.Add(consumer.WeightName);
                values.Add(value);
            }
            using var runOptions = new RunOptions();
            using var outputs = _session.Session.Run(runOptions, names, values, [_block.Output]);
            return BlockModel.ToFloats(outputs[0]);
        }
        finally
        {
            foreach (var v in owned) v.Dispose();
        }
    }

    public void Dispose()
    {
        _session?.Dispose();
        foreach (var v in _fixedValues) v.Dispose();
        _fixedValues.Clear();
    }
}
