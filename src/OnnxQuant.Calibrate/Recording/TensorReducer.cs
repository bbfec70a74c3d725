using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using OnnxQuant.Statistics;

namespace OnnxQuant.Calibrate.Recording;

/// <summary>
/// Reduces one activation tensor on the fly, batch by batch: per-channel min, max and sum |x| (max |x| and the tensor's
/// min and max follow from them),
/// and a fixed-size reservoir of whole rows. Nothing else of the activations is kept.
/// The reservoir uses a generator seeded identically for every tensor, so tensors with the same row stream sample the
/// same tokens, and the result does not depend on how rows were split into batches or runs.
/// </summary>
public sealed class TensorReducer
{
    // Rows summed in float before folding into the double totals: keeps the hot loop in float, the totals exact enough.
    private const int FoldRows = 256;

    private readonly float[] _channelMax;
    private readonly float[] _channelMin;
    private readonly double[] _sumAbs;
    private readonly float[] _partialSum;
    private readonly float[] _reservoir;
    private readonly int _capacity;
    private ulong _rng;
    private int _partialRows;
    private long _rows;

    public TensorReducer(string name, int channels, int reservoirRows, ulong seed)
    {
        Name = name;
        Channels = channels;
        _channelMax = new float[channels];
        _channelMin = new float[channels];
        Array.Fill(_channelMax, float.NegativeInfinity);
        Array.Fill(_channelMin, float.PositiveInfinity);
        _sumAbs = new double[channels];
        _partialSum = new float[channels];
        _capacity = reservoirRows;
        _reservoir = new float[(long)reservoirRows * channels];
        _rng = seed ^ 0x9E3779B97F4A7C15UL;
    }

    public string Name { get; }

    public int Channels { get; }

    public long Rows => _rows;

    /// <summary>Folds <paramref name="rows"/> (row-major, <see cref="Channels"/> values each) into the statistics.</summary>
    public void Add(ReadOnlySpan<float> rows)
    {
        if (rows.Length % Channels != 0)
            throw new ArgumentException($"{rows.Length} values are not whole rows of {Channels} channels");
        int count = rows.Length / Channels;
        for (int r = 0; r < count; r++)
        {
            var row = rows.Slice(r * Channels, Channels);
            AccumulateRow(row);
            if (++_partialRows == FoldRows)
                Fold();
            Sample(row);
            _rows++;
        }
    }

    // One pass per row updates all four per-channel accumulators (they stay in L1), so each activation value is read
    // from memory once; separate TensorPrimitives calls (Abs, Max, Min, Add) read every row four times and made the
    // reduction a visible share of the run.
    private void AccumulateRow(ReadOnlySpan<float> row)
    {
        var max = _channelMax.AsSpan();
        var min = _channelMin.AsSpan();
        var sum = _partialSum.AsSpan();
        int c = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vRow = MemoryMarshal.Cast<float, Vector<float>>(row);
            var vMax = MemoryMarshal.Cast<float, Vector<float>>(max);
            var vMin = MemoryMarshal.Cast<float, Vector<float>>(min);
            var vSum = MemoryMarshal.Cast<float, Vector<float>>(sum);
            for (int i = 0; i < vRow.Length; i++)
            {
                var x = vRow[i];
                vMax[i] = Vector.Max(vMax[i], x);
                vMin[i] = Vector.Min(vMin[i], x);
                vSum[i] += Vector.Abs(x);
            }
            c = vRow.Length * Vector<float>.Count;
        }
        for (; c < row.Length; c++)
        {
            float x = row[c];
            max[c] = Math.Max(max[c], x);
            min[c] = Math.Min(min[c], x);
            sum[c] += Math.Abs(x);
        }
    }

    private void Fold()
    {
        for (int c = 0; c < _partialSum.Length; c++)
            _sumAbs[c] += _partialSum[c];
        Array.Clear(_partialSum);
        _partialRows = 0;
    }

    // Reservoir sampling (Algorithm R) over the row stream.
    private void Sample(ReadOnlySpan<float> row)
    {
        long slot;
        if (_rows < _capacity)
            slot = _rows;
        else
        {
            slot = (long)(NextRandom() % (ulong)(_rows + 1));
            if (slot >= _capacity)
                return;
        }
        row.CopyTo(_reservoir.AsSpan((int)(slot * Channels), Channels));
    }

    // SplitMix64: tiny, fast, and fixed forever (System.Random's sequence is not a documented contract).
    private ulong NextRandom()
    {
        ulong z = _rng += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ActivationStats ToStats()
    {
        if (_rows == 0)
            throw new InvalidOperationException($"no rows were recorded for '{Name}'");
        Fold();
        var mean = new float[Channels];
        for (int c = 0; c < Channels; c++)
            mean[c] = (float)(_sumAbs[c] / _rows);
        // max |x| of a channel is the larger magnitude of its min and max.
        var absMax = new float[Channels];
        TensorPrimitives.MaxMagnitude(_channelMax, _channelMin, absMax);
        TensorPrimitives.Abs(absMax, absMax);
        int kept = (int)Math.Min(_rows, _capacity);
        var sample = _reservoir.AsSpan(0, kept * Channels).ToArray();
        return new ActivationStats(Name, absMax, mean, TensorPrimitives.Min(_channelMin), TensorPrimitives.Max(_channelMax), _rows, sample, kept);
    }
}
