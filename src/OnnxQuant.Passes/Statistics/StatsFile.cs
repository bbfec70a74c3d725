using OnnxQuant.IO;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace OnnxQuant.Statistics;

/// <summary>
/// Reads and writes <see cref="CalibrationStats"/> (the <c>.calib</c> file). Layout, all little-endian:
/// magic "OQCALIB\0", uint32 version, the model fingerprint, the calibration info, the tensors in ordinal name order
/// (name, channels, token count, min, max, absmax[C], meanabs[C], sample row count, rows[rows*C]), then a SHA-256 of
/// everything before it. No clocks, paths or machine names go in, so the same inputs give the same bytes.
/// </summary>
public static class StatsFile
{
    public const uint FormatVersion = 1;
    private static readonly byte[] Magic = "OQCALIB\0"u8.ToArray();
    private const int HashBytes = 32;

    public static void Write(CalibrationStats stats, string path)
    {
        string full = Path.GetFullPath(path);
        string? folder = Path.GetDirectoryName(full);
        if (folder is null || !Directory.Exists(folder))
            throw new OnnxQuantException(path, $"cannot be written: the folder '{folder}' does not exist", ExitCode.OutputError);
        StaleTemporaries.Remove(full);
        string tmp = full + StaleTemporaries.NewSuffix();
        try
        {
            File.WriteAllBytes(tmp, ToBytes(stats));
            File.Move(tmp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw new OnnxQuantException(path, $"cannot be written: {e.Message}", ExitCode.OutputError, e);
        }
    }

    public static byte[] ToBytes(CalibrationStats stats)
    {
        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(FormatVersion);
            w.Write(stats.ModelFingerprint);
            w.Write(stats.Info.Samples);
            w.Write(stats.Info.SequenceLength);
            w.Write(stats.Info.Seed);
            w.Write(stats.Info.Data);
            w.Write(stats.Info.Tokenizer);
            w.Write(stats.Tensors.Count);
            foreach (var t in stats.Tensors)
            {
                w.Write(t.Name);
                w.Write(t.Channels);
                w.Write(t.TokenCount);
                w.Write(t.Min);
                w.Write(t.Max);
                w.Write(MemoryMarshal.AsBytes(t.AbsMax.AsSpan()));
                w.Write(MemoryMarshal.AsBytes(t.MeanAbs.AsSpan()));
                w.Write(t.SampleRowCount);
                w.Write(MemoryMarshal.AsBytes(t.SampleRows.AsSpan()));
            }
        }
        var body = buffer.ToArray();
        var result = new byte[body.Length + HashBytes];
        body.CopyTo(result, 0);
        SHA256.HashData(body, result.AsSpan(body.Length));
        return result;
    }

    public static CalibrationStats Read(string path)
    {
        if (!File.Exists(path))
            throw new OnnxQuantException(path, "does not exist (make one with `onnxquant calibrate model.onnx -o stats.calib`)");
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OnnxQuantException(path, $"cannot be read: {e.Message}", ExitCode.BadInput, e);
        }
        return FromBytes(bytes, path);
    }

    public static CalibrationStats FromBytes(byte[] bytes, string? path = null)
    {
        if (bytes.Length < Magic.Length + 4 + HashBytes || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw new OnnxQuantException(path, "is not an OnnxQuant statistics file (no OQCALIB header); make one with `onnxquant calibrate`");
        uint version = BitConverter.ToUInt32(bytes, Magic.Length);
        if (version != FormatVersion)
            throw new OnnxQuantException(path, $"is a statistics file of format version {version}; this OnnxQuant reads version {FormatVersion}. Calibrate again with this version");
        int bodyLength = bytes.Length - HashBytes;
        if (!SHA256.HashData(bytes.AsSpan(0, bodyLength)).AsSpan().SequenceEqual(bytes.AsSpan(bodyLength)))
            throw new OnnxQuantException(path, "is damaged: its checksum does not match (truncated or modified file?)");
        try
        {
            using var r = new BinaryReader(new MemoryStream(bytes, Magic.Length + 4, bodyLength - Magic.Length - 4), Encoding.UTF8);
            string fingerprint = r.ReadString();
            var info = new CalibrationInfo
            {
                Samples = r.ReadInt32(),
                SequenceLength = r.ReadInt32(),
                Seed = r.ReadInt32(),
                Data = r.ReadString(),
                Tokenizer = r.ReadString(),
            };
            int count = r.ReadInt32();
            var tensors = new List<ActivationStats>(Math.Max(0, Math.Min(count, 1 << 16)));
            for (int i = 0; i < count; i++)
            {
                string name = r.ReadString();
                int channels = r.ReadInt32();
                long tokens = r.ReadInt64();
                float min = r.ReadSingle(), max = r.ReadSingle();
                var absMax = ReadFloats(r, channels);
                var meanAbs = ReadFloats(r, channels);
                int rows = r.ReadInt32();
                var sample = ReadFloats(r, checked(rows * channels));
                tensors.Add(new ActivationStats(name, absMax, meanAbs, min, max, tokens, sample, rows));
            }
            if (r.BaseStream.Position != r.BaseStream.Length)
                throw new InvalidDataException("trailing bytes after the last tensor");
            var stats = new CalibrationStats(fingerprint, info, tensors);
            StatsChecks.EnsureFinite(stats, path, "the file is damaged or was not written by `onnxquant calibrate`; calibrate again");
            return stats;
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException or OverflowException or ArgumentException)
        {
            throw new OnnxQuantException(path, $"is not a valid statistics file: {e.Message}", ExitCode.BadInput, e);
        }
    }

    private static float[] ReadFloats(BinaryReader r, int count)
    {
        if (count < 0 || (long)count * 4 > r.BaseStream.Length - r.BaseStream.Position)
            throw new InvalidDataException($"a block of {count} values runs past the end of the file");
        var values = new float[count];
        r.BaseStream.ReadExactly(MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }
}
