using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;
using OnnxQuant.IR;
using Tensor = OnnxQuant.IR.Tensor;

namespace OnnxQuant.Calibrate.Recording;

/// <summary>
/// The values one segment of a split graph hands to later ones (hidden states, masks, positions, rotary tables), per
/// batch, as bytes owned by this store rather than by a session. Up to <see cref="BudgetBytes"/> stay in memory; beyond
/// that they go to an unlinked scratch file (<see cref="SpillFile"/>) and are read back when a later segment needs them.
/// A value is dropped once the last segment that reads it has run.
/// </summary>
public sealed class CarriedValues : IDisposable
{
    private sealed record Entry(TensorElementType Type, long[] Shape, byte[]? Bytes, Tensor? Spilled)
    {
        public long Length => Bytes?.LongLength ?? Spilled!.ByteLength;
    }

    private readonly Dictionary<(int Batch, string Name), Entry> _entries = new();
    private readonly string _spillFolder;
    private SpillFile? _spill;
    private long _inMemory;

    public CarriedValues(long budgetBytes, string spillFolder)
    {
        BudgetBytes = budgetBytes;
        _spillFolder = spillFolder;
    }

    public long BudgetBytes { get; }

    /// <summary>Most bytes held in memory at once.</summary>
    public long PeakInMemory { get; private set; }

    /// <summary>Bytes written to the scratch file (0 when everything fit).</summary>
    public long SpilledBytes => _spill?.Length ?? 0;

    /// <summary>Keeps a copy of <paramref name="value"/> for batch <paramref name="batch"/>.</summary>
    public void Put(int batch, string name, OrtValue value)
    {
        var info = value.GetTensorTypeAndShape();
        if (info.ElementDataType == TensorElementType.String)
            throw new OnnxQuantException(null, $"value '{name}' is a string tensor; a split graph can only carry numeric values", ExitCode.Unsupported);
        var bytes = value.GetTensorDataAsSpan<byte>().ToArray();
        Entry entry;
        if (_inMemory + bytes.LongLength <= BudgetBytes)
        {
            entry = new Entry(info.ElementDataType, info.Shape, bytes, null);
            _inMemory += bytes.LongLength;
            PeakInMemory = Math.Max(PeakInMemory, _inMemory);
        }
        else
        {
            _spill ??= new SpillFile(_spillFolder);
            // ORT's element numbers follow TensorProto.DataType, so the type travels through the IR tensor unchanged.
            var tensor = Tensor.FromBytes(name, (TensorProto.Types.DataType)(int)info.ElementDataType, info.Shape, bytes);
            entry = new Entry(info.ElementDataType, info.Shape, null, _spill.Write(tensor));
        }
        Remove(batch, name);
        _entries[(batch, name)] = entry;
    }

    /// <summary>Element type (ONNX numbering) and rank of a value, from any batch.</summary>
    public (int ElementType, int Rank) TypeOf(string name)
    {
        var entry = _entries.First(e => e.Key.Name == name).Value;
        return ((int)entry.Type, entry.Shape.Length);
    }

    /// <summary>A fresh tensor with the value's bytes, for a later segment's feed (the caller disposes it).</summary>
    public OrtValue Get(int batch, string name)
    {
        var entry = _entries[(batch, name)];
        var value = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, entry.Type, entry.Shape);
        var destination = value.GetTensorMutableDataAsSpan<byte>();
        if (entry.Bytes is not null)
            entry.Bytes.CopyTo(destination);
        else
            entry.Spilled!.RawBytes.CopyTo(destination);
        return value;
    }

    /// <summary>Drops every batch's copy of <paramref name="name"/>.</summary>
    public void Drop(string name)
    {
        foreach (var key in _entries.Keys.Where(k => k.Name == name).ToList())
            Remove(key.Batch, key.Name);
    }

    private void Remove(int batch, string name)
    {
        if (_entries.Remove((batch, name), out var old) && old.Bytes is not null)
            _inMemory -= old.Bytes.LongLength;
    }

    public void Dispose() => _spill?.Dispose();
}
