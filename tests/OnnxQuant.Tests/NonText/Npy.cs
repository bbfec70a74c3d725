using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;

namespace OnnxQuant.Tests.NonText;

/// <summary>Writes .npy bytes and .npz archives exactly as numpy's format spec lays them out, for the reader's tests and fixtures.</summary>
internal static class Npy
{
    public static byte[] Bytes(string descr, long[] shape, byte[] data, bool fortran = false, int major = 1)
    {
        string dims = shape.Length == 1 ? $"{shape[0]}," : string.Join(", ", shape);
        string dict = $"{{'descr': '{descr}', 'fortran_order': {(fortran ? "True" : "False")}, 'shape': ({dims}), }}";
        int prefix = 8 + (major == 1 ? 2 : 4);
        // Padded with spaces and a newline so the data starts on a 64-byte boundary.
        int total = (prefix + dict.Length + 1 + 63) / 64 * 64;
        string header = dict.PadRight(total - prefix - 1) + "\n";
        var bytes = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, 0 };
        if (major == 1)
            bytes.AddRange(BitConverter.GetBytes((ushort)header.Length));
        else
            bytes.AddRange(BitConverter.GetBytes((uint)header.Length));
        bytes.AddRange(Encoding.ASCII.GetBytes(header));
        bytes.AddRange(data);
        return [.. bytes];
    }

    public static byte[] Floats(long[] shape, float[] values) => Bytes("<f4", shape, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    /// <summary>A .npz: one member per array, named "{name}.npy"; the first stored, the rest deflated (numpy.savez_compressed does that).</summary>
    public static void WriteNpz(string path, params (string Name, byte[] Npy)[] members)
    {
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        for (int i = 0; i < members.Length; i++)
        {
            var entry = zip.CreateEntry(members[i].Name + ".npy", i == 0 ? CompressionLevel.NoCompression : CompressionLevel.Optimal);
            using var stream = entry.Open();
            stream.Write(members[i].Npy);
        }
    }

    /// <summary>Seeded float32 values in [-1, 1).</summary>
    public static float[] Random(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }
}
