using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Onnx;

namespace OnnxQuant.IR;

/// <summary>
/// A constant tensor (an initializer). Its bytes are little-endian raw data, either owned in memory or a lazy slice of a
/// memory-mapped external data file. Values can be read as float whatever the float storage type (fp32, fp16, bf16).
/// </summary>
public sealed class Tensor
{
    private readonly byte[]? _bytes;
    private readonly MappedFile? _file;
    private readonly SpillFile? _spill;
    private readonly long _offset;

    private Tensor(string name, TensorProto.Types.DataType type, long[] shape, byte[]? bytes, MappedFile? file, long offset, long byteLength, TensorProto? stringProto, SpillFile? spill = null)
    {
        _spill = spill;
        Name = name;
        DataType = type;
        Shape = shape;
        _bytes = bytes;
        _file = file;
        _offset = offset;
        ByteLength = byteLength;
        StringProto = stringProto;
    }

    public string Name { get; }

    public TensorProto.Types.DataType DataType { get; }

    public IReadOnlyList<long> Shape { get; }

    public long ElementCount => ShapeMath.Count(Shape);

    public long ByteLength { get; }

    /// <summary>True while the bytes still live in a mapped external-data file (nothing copied yet).</summary>
    public bool IsMapped => _file is not null;

    /// <summary>True when the bytes live on disk (mapped input data or a spill file) rather than in managed memory.</summary>
    public bool IsOnDisk => _file is not null || _spill is not null;

    /// <summary>The mapped external-data file and offset this tensor still reads from, or null once it lives in memory.</summary>
    internal (MappedFile File, long Offset)? MappedLocation => _file is null ? null : (_file, _offset);

    /// <summary>The byte array this tensor owns (never changed once the tensor exists), or null when its bytes live elsewhere.</summary>
    internal byte[]? OwnedBytes => _bytes;

    /// <summary>The spill file and offset this tensor reads from, or null when it lives elsewhere.</summary>
    internal (SpillFile File, long Offset)? SpillLocation => _spill is null ? null : (_spill, _offset);

    /// <summary>String tensors are kept as their original proto; nothing in OnnxQuant computes on them.</summary>
    internal TensorProto? StringProto { get; }

    public static Tensor FromBytes(string name, TensorProto.Types.DataType type, IReadOnlyList<long> shape, byte[] bytes)
    {
        long expected = ShapeMath.Count(shape) * ElementType.SizeOf(type);
        if (ElementType.SizeOf(type) > 0 && bytes.Length != expected)
            throw new ArgumentException($"tensor '{name}': {bytes.Length} bytes for shape [{string.Join(",", shape)}] of {ElementType.Name(type)} (expected {expected})");
        return new Tensor(name, type, shape.ToArray(), bytes, null, 0, bytes.Length, null);
    }

    internal static Tensor FromMapped(string name, TensorProto.Types.DataType type, IReadOnlyList<long> shape, MappedFile file, long offset, long length) =>
        new(name, type, shape.ToArray(), null, file, offset, length, null);

    internal static Tensor FromSpill(string name, TensorProto.Types.DataType type, IReadOnlyList<long> shape, SpillFile spill, long offset, long length) =>
        new(name, type, shape.ToArray(), null, null, offset, length, null, spill);

    internal static Tensor FromStringProto(TensorProto proto) =>
        new(proto.Name, TensorProto.Types.DataType.String, proto.Dims.ToArray(), null, null, 0, 0, proto);

    /// <summary>A float tensor stored as <paramref name="type"/> (fp32, fp16 or bf16).</summary>
    public static Tensor FromFloats(string name, ReadOnlySpan<float> values, IReadOnlyList<long> shape, TensorProto.Types.DataType type = TensorProto.Types.DataType.Float)
    {
        if (values.Length != ShapeMath.Count(shape))
            throw new ArgumentException($"tensor '{name}': {values.Length} values for shape [{string.Join(",", shape)}]");
        LargeAllocations.BeforeAllocating((long)values.Length * ElementType.SizeOf(type));
        return FromBytes(name, type, shape, FloatCodec.Encode(values, type));
    }

    public static Tensor FromInt64s(string name, ReadOnlySpan<long> values, IReadOnlyList<long> shape) =>
        FromBytes(name, TensorProto.Types.DataType.Int64, shape, MemoryMarshal.AsBytes(values).ToArray());

    public static Tensor FromInt8s(string name, ReadOnlySpan<sbyte> values, IReadOnlyList<long> shape) =>
        FromBytes(name, TensorProto.Types.DataType.Int8, shape, MemoryMarshal.AsBytes(values).ToArray());

    /// <summary>
    /// An int8 tensor over <paramref name="values"/> itself, not a copy: for a multi-GB rewrite the quantizer's array
    /// becomes the tensor's bytes (sbyte[] and byte[] share one layout). The caller must not change the array afterwards.
    /// </summary>
    public static Tensor FromInt8Array(string name, sbyte[] values, IReadOnlyList<long> shape) =>
        FromBytes(name, TensorProto.Types.DataType.Int8, shape, Unsafe.As<byte[]>(values));

    public static Tensor FromUInt8s(string name, ReadOnlySpan<byte> values, IReadOnlyList<long> shape, TensorProto.Types.DataType type = TensorProto.Types.DataType.Uint8) =>
        FromBytes(name, type, shape, values.ToArray());

    /// <summary>A view of the raw little-endian bytes. For mapped tensors this reads straight from the mapping.</summary>
    public ReadOnlySpan<byte> RawBytes
    {
        get
        {
            if (_bytes is not null)
                return _bytes;
            if (_file is null && _spill is null)
                return ReadOnlySpan<byte>.Empty;
            if (ByteLength > int.MaxValue)
                throw new OnnxQuantException(_file?.Path, $"tensor '{Name}' is {ByteLength} bytes; a single tensor over 2 GiB is not supported");
            return _spill is not null ? _spill.Read(_offset, (int)ByteLength) : _file!.Slice(_offset, (int)ByteLength);
        }
    }

    /// <summary>
    /// Appends the raw bytes to <paramref name="destination"/>. Bytes still in a file (the mapped input's data, the spill
    /// file) are copied by the kernel where it can (<see cref="FileRangeCopy"/>); otherwise a chunk at a time (the size of
    /// <paramref name="buffer"/>), a mapped tensor dropping each chunk's pages once written, so saving a multi-GB model
    /// adds at most one chunk to the resident set.
    /// </summary>
    public void WriteTo(PositionalFileWriter destination, byte[] buffer)
    {
        if (_bytes is not null || (_file is null && _spill is null))
        {
            destination.Write(RawBytes);
            return;
        }
        // Elsewhere than Linux the input is not even reopened for it (a second handle beside the mapping).
        long copied = FileRangeCopy.Available
            ? destination.CopyFrom(_file is not null ? _file.ReadHandle : _spill!.WrittenHandle(), _offset, ByteLength)
            : 0;
        for (long done = copied; done < ByteLength; done += buffer.Length)
        {
            int n = (int)Math.Min(buffer.Length, ByteLength - done);
            if (_file is not null)
            {
                destination.Write(_file.Slice(_offset + done, n));
                _file.Release(_offset + done, n);
            }
            else
            {
                _spill!.Read(_offset + done, buffer.AsSpan(0, n));
                destination.Write(buffer.AsSpan(0, n));
            }
        }
    }

    /// <summary>The values as float32, converted from fp32, fp16, bf16 or float64 storage.</summary>
    public float[] ToFloats()
    {
        if (!ElementType.IsFloat(DataType))
            throw new InvalidOperationException($"tensor '{Name}' is {ElementType.Name(DataType)}, not a float type");
        LargeAllocations.BeforeAllocating(ElementCount * sizeof(float));
        // Every element is decoded below: zeroing first was 7% of a W8 pass's CPU (a 7B MLP weight is 180 MB as fp32).
        var result = GC.AllocateUninitializedArray<float>(checked((int)ElementCount));
        const int sliceElements = 1 << 20;
        if (result.Length <= sliceElements)
        {
            DecodeRange(0, result);
            return result;
        }
        // Decoded a slice at a time, slices in parallel (fp16 -> fp32 conversion is the bulk of reading a weight); a
        // mapped slice's pages are dropped at once and a spilled one is read a slice at a time, so the read adds only
        // the floats to the resident set.
        int slices = (int)((result.LongLength + sliceElements - 1) / sliceElements);
        Parallel.For(0, slices, i =>
        {
            long first = (long)i * sliceElements;
            DecodeRange(first, result.AsSpan((int)first, (int)Math.Min(sliceElements, result.LongLength - first)));
        });
        return result;
    }

    /// <summary>
    /// Decodes elements [first, first + destination.Length) to float32 (a row band of a weight, for quantizers that never
    /// hold the whole weight as fp32). Mapped pages of the range are dropped once read. Safe to call concurrently.
    /// </summary>
    public void DecodeRange(long first, Span<float> destination)
    {
        if (!ElementType.IsFloat(DataType))
            throw new InvalidOperationException($"tensor '{Name}' is {ElementType.Name(DataType)}, not a float type");
        if (first < 0 || first + destination.Length > ElementCount)
            throw new ArgumentOutOfRangeException(nameof(first), $"elements [{first}, {first + destination.Length}) of tensor '{Name}' ({ElementCount} elements)");
        DecodeRun(first, destination);
        ReleaseRange(first, destination.Length);
    }

    // Elements [first, first + destination.Length) from whichever storage holds them; the caller checked the range.
    private void DecodeRun(long first, Span<float> destination)
    {
        if (TryStoredRun(first, destination.Length, out var stored))
        {
            FloatCodec.Decode(stored, DataType, destination);
            return;
        }
        int size = ElementType.SizeOf(DataType);
        FloatCodec.Decode(_spill!.Read(_offset + first * size, destination.Length * size), DataType, destination);
    }

    /// <summary>
    /// Decodes a tile of a row-major matrix view of this tensor: <paramref name="rows"/> runs of <paramref name="columns"/>
    /// elements, the first at element <paramref name="first"/>, each <paramref name="stride"/> elements after the last,
    /// into <paramref name="destination"/> ([rows, columns]). Pages are not released (see <see cref="ReleaseRange"/>).
    /// Safe to call concurrently.
    /// </summary>
    public void DecodeTile(long first, int rows, int columns, long stride, Span<float> destination)
    {
        if (!ElementType.IsFloat(DataType))
            throw new InvalidOperationException($"tensor '{Name}' is {ElementType.Name(DataType)}, not a float type");
        long last = first + (rows - 1) * stride + columns;
        if (rows <= 0 || columns <= 0 || first < 0 || last > ElementCount || destination.Length < rows * columns)
            throw new ArgumentOutOfRangeException(nameof(first), $"a {rows} x {columns} tile at element {first} (stride {stride}) of tensor '{Name}' ({ElementCount} elements)");
        for (int r = 0; r < rows; r++)
            DecodeRun(first + r * stride, destination.Slice(r * columns, columns));
    }

    /// <summary>
    /// The stored bytes of elements [first, first + count) viewed in place (owned or mapped bytes); false for a spilled
    /// tensor, whose bytes would have to be read.
    /// </summary>
    internal bool TryStoredRun(long first, int count, out ReadOnlySpan<byte> bytes)
    {
        int size = ElementType.SizeOf(DataType);
        if (_bytes is not null)
            bytes = _bytes.AsSpan(checked((int)(first * size)), count * size);
        else if (_file is not null)
            bytes = _file.Slice(_offset + first * size, count * size);
        else
        {
            bytes = default;
            return false;
        }
        return true;
    }

    /// <summary>Drops the mapped pages of elements [first, first + count) from our resident set (nothing for other storage).</summary>
    public void ReleaseRange(long first, long count)
    {
        int size = ElementType.SizeOf(DataType);
        _file?.Release(_offset + first * size, count * size);
    }

    /// <summary>Lets the OS drop this tensor's mapped pages from our resident set after a read (see <see cref="MappedFile.Release"/>).</summary>
    public void ReleaseMappedPages() => _file?.Release(_offset, ByteLength);

    public long[] ToInt64s()
    {
        var raw = RawBytes;
        var result = new long[ElementCount];
        switch (DataType)
        {
            case TensorProto.Types.DataType.Int64:
                MemoryMarshal.Cast<byte, long>(raw).CopyTo(result);
                break;
            case TensorProto.Types.DataType.Int32:
                var ints = MemoryMarshal.Cast<byte, int>(raw);
                for (int i = 0; i < ints.Length; i++) result[i] = ints[i];
                break;
            default:
                throw new InvalidOperationException($"tensor '{Name}' is {ElementType.Name(DataType)}, not an integer type");
        }
        return result;
    }

    /// <summary>The same values under another name.</summary>
    public Tensor Renamed(string name) => new(name, DataType, Shape.ToArray(), _bytes, _file, _offset, ByteLength, StringProto, _spill);

    public override string ToString() => $"{Name}: {ElementType.Name(DataType)}[{string.Join(",", Shape)}]";
}

/// <summary>Converts between float32 and the float storage types.</summary>
public static class FloatCodec
{
    public static byte[] Encode(ReadOnlySpan<float> values, TensorProto.Types.DataType type)
    {
        switch (type)
        {
            case TensorProto.Types.DataType.Float:
                return MemoryMarshal.AsBytes(values).ToArray();
            case TensorProto.Types.DataType.Float16:
            {
                var bytes = new byte[values.Length * 2];
                EncodeHalves(values, bytes);
                return bytes;
            }
            case TensorProto.Types.DataType.Bfloat16:
            {
                var bytes = new byte[values.Length * 2];
                var dst = MemoryMarshal.Cast<byte, ushort>(bytes.AsSpan());
                for (int i = 0; i < values.Length; i++) dst[i] = ToBFloat16(values[i]);
                return bytes;
            }
            case TensorProto.Types.DataType.Double:
            {
                var bytes = new byte[values.Length * 8];
                var dst = MemoryMarshal.Cast<byte, double>(bytes.AsSpan());
                for (int i = 0; i < values.Length; i++) dst[i] = values[i];
                return bytes;
            }
            default:
                throw new ArgumentException($"{ElementType.Name(type)} is not a float type");
        }
    }

    // fp32 -> fp16 of a rewritten weight (a fold's output): 1 M-element slices on every core when there are several.
    private static unsafe void EncodeHalves(ReadOnlySpan<float> values, byte[] bytes)
    {
        const int slice = 1 << 20;
        var halves = MemoryMarshal.Cast<byte, Half>(bytes.AsSpan());
        if (values.Length < 2 * slice)
        {
            TensorPrimitives.ConvertToHalf(values, halves);
            return;
        }
        fixed (float* source = values)
        fixed (byte* destination = bytes)
        {
            nint src = (nint)source, dst = (nint)destination;
            int length = values.Length;
            Parallel.For(0, (length + slice - 1) / slice, i =>
            {
                int first = i * slice, count = Math.Min(slice, length - first);
                TensorPrimitives.ConvertToHalf(new ReadOnlySpan<float>((float*)src + first, count), new Span<Half>((Half*)dst + first, count));
            });
        }
    }

    public static void Decode(ReadOnlySpan<byte> raw, TensorProto.Types.DataType type, Span<float> result)
    {
        switch (type)
        {
            case TensorProto.Types.DataType.Float:
                MemoryMarshal.Cast<byte, float>(raw).CopyTo(result);
                break;
            case TensorProto.Types.DataType.Float16:
                Numerics.HalfWidening.ToSingle(MemoryMarshal.Cast<byte, ushort>(raw), result);
                break;
            case TensorProto.Types.DataType.Bfloat16:
                var bf = MemoryMarshal.Cast<byte, ushort>(raw);
                for (int i = 0; i < bf.Length; i++) result[i] = BitConverter.Int32BitsToSingle(bf[i] << 16);
                break;
            case TensorProto.Types.DataType.Double:
                var d = MemoryMarshal.Cast<byte, double>(raw);
                for (int i = 0; i < d.Length; i++) result[i] = (float)d[i];
                break;
            default:
                throw new ArgumentException($"{ElementType.Name(type)} is not a float type");
        }
    }

    /// <summary>float32 -> bfloat16 with round-to-nearest-even; NaN stays NaN.</summary>
    public static ushort ToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
            return (ushort)((bits >> 16) | 0x40);
        uint rounding = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }

    public static float FromBFloat16(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);
}

public static class ShapeMath
{
    public static long Count(IReadOnlyList<long> shape)
    {
        long n = 1;
        foreach (var d in shape) n *= d;
        return n;
    }
}
