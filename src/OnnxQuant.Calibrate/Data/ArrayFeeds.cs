using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxQuant.Calibrate.Data;

/// <summary>
/// Feeds for a model whose inputs are not token ids (a ViT's pixels, a speech encoder's features), from a .npz: each
/// array is named after the model input it fills and holds the samples along axis 0, so sample i is row i of every
/// array. Element types convert within their family (float32/float16, int64/int32/uint8); see docs/architecture.md,
/// "Non-text data (.npz)".
/// </summary>
public sealed class ArrayFeeds
{
    private readonly Dictionary<string, NpyArray> _arrays;

    public ArrayFeeds(IReadOnlyList<NpyArray> arrays, string path)
    {
        Path = path;
        _arrays = arrays.ToDictionary(a => a.Name, StringComparer.Ordinal);
        var scalar = arrays.FirstOrDefault(a => a.Shape.Length == 0);
        if (scalar is not null)
            throw new OnnxQuantException(path, $"array '{scalar.Name}' is a scalar; every array needs the samples along axis 0");
        var counts = arrays.Select(a => a.Shape[0]).Distinct().ToList();
        if (counts.Count != 1)
            throw new OnnxQuantException(path,
                $"arrays have different sample counts along axis 0 ({string.Join(", ", arrays.Select(a => $"{a.Name}: {a.Shape[0]}"))}); sample i is row i of every array");
        Count = (int)counts[0];
        if (Count == 0)
            throw new OnnxQuantException(path, "holds no samples (axis 0 is empty)");
    }

    public static ArrayFeeds Load(string path) => new(NpyFile.ReadNpz(path), path);

    public string Path { get; }

    /// <summary>Samples along axis 0.</summary>
    public int Count { get; }

    /// <summary>Values per sample of the largest array over its last axis: a bound on a sample's activation rows, for memory planning.</summary>
    public int RowsPerSample => (int)Math.Max(1, _arrays.Values.Max(a => a.Shape.Skip(1).SkipLast(1).Aggregate(1L, (n, d) => n * d)));

    /// <summary>The session's inputs for samples [<paramref name="start"/>, <paramref name="start"/> + <paramref name="count"/>).</summary>
    public (List<string> Names, List<OrtValue> Values) Build(IReadOnlyDictionary<string, NodeMetadata> inputs, int start, int count, string modelLabel)
    {
        var missing = inputs.Keys.Where(n => !_arrays.ContainsKey(n)).ToList();
        if (missing.Count > 0)
            throw new OnnxQuantException(Path,
                $"has no array for model input(s) {string.Join(", ", missing.Select(m => $"'{m}'"))} of {modelLabel}; it holds {string.Join(", ", _arrays.Keys.Select(k => $"'{k}'"))}. " +
                "Name each array after the input it fills (numpy.savez(path, **{input_name: array}))");
        var names = new List<string>();
        var values = new List<OrtValue>();
        try
        {
            foreach (var (name, meta) in inputs)
            {
                names.Add(name);
                values.Add(Create(_arrays[name], meta, start, count, modelLabel));
            }
        }
        catch
        {
            foreach (var v in values) v.Dispose();
            throw;
        }
        return (names, values);
    }

    private OrtValue Create(NpyArray array, NodeMetadata meta, int start, int count, string modelLabel)
    {
        var shape = array.Shape.ToArray();
        shape[0] = count;
        if (meta.Dimensions.Length != shape.Length)
            throw new OnnxQuantException(Path, $"array '{array.Name}' has {shape.Length} dimensions, but input '{array.Name}' of {modelLabel} has {meta.Dimensions.Length}");
        for (int d = 1; d < shape.Length; d++)
            if (meta.Dimensions[d] > 0 && meta.Dimensions[d] != shape[d])
                throw new OnnxQuantException(Path, $"array '{array.Name}' has size {shape[d]} on axis {d}, but input '{array.Name}' of {modelLabel} is fixed at {meta.Dimensions[d]} there");
        long perSample = array.ElementCount / array.Shape[0];
        int item = NpyArray.ItemSize(array.Type);
        var bytes = array.Data.AsSpan((int)(start * perSample * item), (int)(count * perSample * item));
        return (meta.ElementDataType, array.Type) switch
        {
            (TensorElementType.Float, NpyType.Float32) => Tensor(MemoryMarshal.Cast<byte, float>(bytes).ToArray(), shape),
            (TensorElementType.Float, NpyType.Float16) => Tensor(MemoryMarshal.Cast<byte, Half>(bytes).ToArray().Select(h => (float)h).ToArray(), shape),
            (TensorElementType.Float16, NpyType.Float16) => Tensor(MemoryMarshal.Cast<byte, Float16>(bytes).ToArray(), shape),
            (TensorElementType.Float16, NpyType.Float32) => Tensor(MemoryMarshal.Cast<Half, Float16>(MemoryMarshal.Cast<byte, float>(bytes).ToArray().Select(f => (Half)f).ToArray()).ToArray(), shape),
            (TensorElementType.Int64, NpyType.Int64) => Tensor(MemoryMarshal.Cast<byte, long>(bytes).ToArray(), shape),
            (TensorElementType.Int64, NpyType.Int32) => Tensor(MemoryMarshal.Cast<byte, int>(bytes).ToArray().Select(v => (long)v).ToArray(), shape),
            (TensorElementType.Int64, NpyType.UInt8) => Tensor(bytes.ToArray().Select(v => (long)v).ToArray(), shape),
            (TensorElementType.Int32, NpyType.Int32) => Tensor(MemoryMarshal.Cast<byte, int>(bytes).ToArray(), shape),
            (TensorElementType.Int32, NpyType.Int64) => Tensor(MemoryMarshal.Cast<byte, long>(bytes).ToArray().Select(v => checked((int)v)).ToArray(), shape),
            (TensorElementType.Bool, NpyType.Bool) => Tensor(bytes.ToArray().Select(b => b != 0).ToArray(), shape),
            (TensorElementType.UInt8, NpyType.UInt8) => Tensor(bytes.ToArray(), shape),
            var (want, have) => throw new OnnxQuantException(Path,
                $"array '{array.Name}' is {have.ToString().ToLowerInvariant()}, but input '{array.Name}' of {modelLabel} takes {want}; convert it with numpy's astype", ExitCode.BadInput),
        };
    }

    private static OrtValue Tensor<T>(T[] data, long[] shape) where T : unmanaged => OrtValue.CreateTensorValueFromMemory(data, shape);
}
