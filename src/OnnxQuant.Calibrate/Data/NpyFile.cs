using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using OnnxQuant.IO;

namespace OnnxQuant.Calibrate.Data;

/// <summary>The element types OnnxQuant reads from .npy files (little-endian, as numpy writes on every common machine).</summary>
public enum NpyType
{
    Float32,
    Float16,
    Int64,
    Int32,
    Bool,
    UInt8,
}

/// <summary>One array of a .npy file (or one member of a .npz): its name, element type, shape and raw little-endian bytes, C order.</summary>
public sealed record NpyArray(string Name, NpyType Type, long[] Shape, byte[] Data)
{
    public long ElementCount => Shape.Aggregate(1L, (n, d) => n * d);

    public static int ItemSize(NpyType type) => type switch
    {
        NpyType.Float32 or NpyType.Int32 => 4,
        NpyType.Float16 => 2,
        NpyType.Int64 => 8,
        _ => 1,
    };
}

/// <summary>
/// Reads numpy's .npy and .npz files. A .npy is the magic "\x93NUMPY", a version byte pair (1.0: a 2-byte header
/// length; 2.0 and 3.0: 4 bytes), then a Python dict literal with 'descr' (the dtype, e.g. '&lt;f4'),
/// 'fortran_order' and 'shape', padded so the data starts on a 64-byte boundary; the data follows as raw elements.
/// A .npz is a zip archive of .npy members (stored or deflated), each named after its array. Only C-order arrays of
/// &lt;f4, &lt;f2, &lt;i8, &lt;i4, |b1 and |u1 are read; anything else is refused with the dtype named.
/// See docs/architecture.md, "Non-text data (.npz)".
/// </summary>
public static partial class NpyFile
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>All arrays of a .npz, in archive order.</summary>
    public static IReadOnlyList<NpyArray> ReadNpz(string path)
    {
        if (!File.Exists(path))
            throw new OnnxQuantException(path, "does not exist");
        FileKinds.RequireRegular(path, "a .npz archive");
        try
        {
            using var zip = ZipFile.OpenRead(path);
            var arrays = new List<NpyArray>();
            foreach (var entry in zip.Entries.Where(e => e.Name.Length > 0))
            {
                string name = entry.FullName.EndsWith(".npy", StringComparison.Ordinal) ? entry.FullName[..^4] : entry.FullName;
                using var stream = entry.Open();
                using var buffer = new MemoryStream();
                stream.CopyTo(buffer);
                arrays.Add(Parse(buffer.ToArray(), name, $"{path} member '{entry.FullName}'"));
            }
            if (arrays.Count == 0)
                throw new OnnxQuantException(path, "holds no arrays");
            return arrays;
        }
        catch (InvalidDataException e)
        {
            throw new OnnxQuantException(path, $"is not a .npz (zip) archive: {e.Message}", ExitCode.BadInput, e);
        }
    }

    /// <summary>The array of a .npy file, named after the file.</summary>
    public static NpyArray ReadNpy(string path)
    {
        if (!File.Exists(path))
            throw new OnnxQuantException(path, "does not exist");
        FileKinds.RequireRegular(path, "a .npy array");
        return Parse(File.ReadAllBytes(path), Path.GetFileNameWithoutExtension(path), path);
    }

    /// <summary>Parses the bytes of one .npy; <paramref name="label"/> names it in errors.</summary>
    public static NpyArray Parse(byte[] bytes, string name, string label)
    {
        if (bytes.Length < 10 || !bytes.AsSpan(0, 6).SequenceEqual(Magic))
            throw new OnnxQuantException(label, "is not a .npy array: it does not start with numpy's magic \\x93NUMPY");
        int major = bytes[6];
        int lengthBytes = major switch
        {
            1 => 2,
            2 or 3 => 4,
            _ => throw new OnnxQuantException(label, $"is a .npy of format version {major}.{bytes[7]}; versions 1.0 to 3.0 are read"),
        };
        if (bytes.Length < 8 + lengthBytes)
            throw new OnnxQuantException(label, $"is truncated: {bytes.Length} bytes end inside the .npy preamble");
        long headerLength = lengthBytes == 2 ? BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)) : BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8));
        long dataStart = 8 + lengthBytes + headerLength;
        if (dataStart > bytes.Length)
            throw new OnnxQuantException(label, $"is truncated: its header claims {headerLength} bytes but the file has {bytes.Length}");
        string header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(bytes, 8 + lengthBytes, (int)headerLength);
        var (type, shape) = ParseHeader(header, label);
        // A crafted shape may overflow the element count; then it holds more elements than any file.
        long size = shape.Aggregate((long)NpyArray.ItemSize(type), (n, d) => n == 0 || d <= long.MaxValue / n ? n * d : long.MaxValue);
        if (bytes.Length - dataStart != size)
            throw new OnnxQuantException(label,
                $"holds {bytes.Length - dataStart} data bytes, but shape ({string.Join(", ", shape)}) of {Describe(type)} needs {size}");
        return new NpyArray(name, type, shape, bytes.AsSpan((int)dataStart).ToArray());
    }

    private static (NpyType Type, long[] Shape) ParseHeader(string header, string label)
    {
        var descr = DescrPattern().Match(header);
        var fortran = FortranPattern().Match(header);
        var shape = ShapePattern().Match(header);
        if (!descr.Success || !fortran.Success || !shape.Success)
            throw new OnnxQuantException(label, $"has a .npy header without 'descr', 'fortran_order' and 'shape': {header.Trim()}");
        if (fortran.Groups[1].Value == "True")
            throw new OnnxQuantException(label, "is stored in Fortran (column-major) order; save it in C order (numpy.ascontiguousarray) and try again", ExitCode.Unsupported);
        string d = descr.Groups[1].Value;
        NpyType type = d switch
        {
            "<f4" => NpyType.Float32,
            "<f2" => NpyType.Float16,
            "<i8" => NpyType.Int64,
            "<i4" => NpyType.Int32,
            "|b1" => NpyType.Bool,
            "|u1" => NpyType.UInt8,
            _ => throw new OnnxQuantException(label,
                $"has element type '{d}'; OnnxQuant reads little-endian float32 (<f4), float16 (<f2), int64 (<i8), int32 (<i4), bool (|b1) and uint8 (|u1). Convert it with numpy's astype",
                ExitCode.Unsupported),
        };
        var dims = shape.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => long.TryParse(s.TrimEnd('L'), out long v) && v >= 0 ? v : throw new OnnxQuantException(label, $"has a shape entry '{s}' that is not a size"))
            .ToArray();
        return (type, dims);
    }

    private static string Describe(NpyType type) => $"{type.ToString().ToLowerInvariant()} ({NpyArray.ItemSize(type)} bytes each)";

    [GeneratedRegex(@"['""]descr['""]\s*:\s*['""]([^'""]*)['""]")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"['""]fortran_order['""]\s*:\s*(True|False)")]
    private static partial Regex FortranPattern();

    [GeneratedRegex(@"['""]shape['""]\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
