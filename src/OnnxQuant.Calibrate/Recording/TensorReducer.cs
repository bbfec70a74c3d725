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

    // Rows whose values update the per-channel accumulators in registers before they are stored back.
    private const int BlockRows = 8;

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
        for (int r = 0; r < count; r += BlockRows)
        {
            int block = Math.Min(BlockRows, count - r);
            var rowsOfBlock = rows.Slice(r * Channels, block * Channels);
            AccumulateBlock(rowsOfBlock, block);
            for (int k = 0; k < block; k++)
            {
                Sample(rowsOfBlock.Slice(k * Channels, Channels));
                _rows++;
            }
            _partialRows += block;
            if (_partialRows >= FoldRows)
                Fold();
        }
    }

    // The hot loop. Each vector of channels is loaded into registers once per block of rows, updated with every row
    // of the block (max, min, sum |x|), and stored once, so each activation value is read once and the accumulators
    // cost a load and a store per block rather than per row. Separate TensorPrimitives calls (Abs, Max, Min, Add per
    // row) read each row four times and made the reduction a visible share of the run.
    private void AccumulateBlock(ReadOnlySpan<float> block, int rows)
    {
        int channels = Channels, width = Vector<float>.Count, c = 0;
        ref float src = ref MemoryMarshal.GetReference(block);
        ref float max = ref MemoryMarshal.GetArrayDataReference(_channelMax);
        ref float min = ref MemoryMarshal.GetArrayDataReference(_channelMin);
        ref float sum = ref MemoryMarshal.GetArrayDataReference(_partialSum);
        if (Vector.IsHardwareAccelerated)
        {
            for (; c <= channels - width; c += width)
            {
                var vMax = Vector.LoadUnsafe(ref max, (nuint)c);
                var vMin = Vector.LoadUnsafe(ref min, (nuint)c);
                var vSum = Vector.LoadUnsafe(ref sum, (nuint)c);
                for (int k = 0; k < rows; k++)
                {
                    var x = Vector.LoadUnsafe(ref src, (nuint)(k * channels + c));
                    vMax = Vector.Max(vMax, x);
                    vMin = Vector.Min(vMin, x);
                    vSum += Vector.Abs(x);
                }
                vMax.StoreUnsafe(ref max, (nuint)c);
                vMin.StoreUnsafe(ref min, (nuint)c);
                vSum.StoreUnsafe(ref sum, (nuint)c);
            }
        }
        for (; c < channels; c++)
        {
            for (int k = 0; k < rows; k++)
            {
                float x = block[k * channels + c];
                _channelMax[c] = Math.Max(_channelMax[c], x);
                _channelMin[c] = Math.Min(_channelMin[c], x);
                _partialSum[c] += Math.Abs(x);
            }
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
            // A uniform draw in [0, rows]: the high half of random x (rows + 1), cheaper than a 64-bit division.
            slot = (long)Math.BigMul(NextRandom(), (ulong)(_rows + 1), out _);
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
