using System.Text;
using System.Text.Unicode;
using OnnxQuant.IO;

namespace OnnxQuant.Calibrate.Data;

/// <summary>
/// Reads a text file given as data (--data, --verify-data, eval's held-out text) as UTF-8, refusing what is not text:
/// a binary file, UTF-16, or bytes mostly outside UTF-8 would otherwise tokenize into noise without a word.
/// </summary>
public static class DataText
{
    // A few stray bytes in a large scraped text are replaced; beyond this share the file is not UTF-8 text.
    private const double MaxInvalidShare = 0.01;

    public static string Read(string path, string option)
    {
        FileKinds.RequireRegular(path, $"a text file for {option}");
        var bytes = File.ReadAllBytes(path);
        if (bytes is [0xFF, 0xFE, ..] or [0xFE, 0xFF, ..])
            throw new OnnxQuantException(path, $"is UTF-16 text (it starts with a UTF-16 byte-order mark); {option} reads UTF-8: convert it, e.g. iconv -f UTF-16 -t UTF-8");
        int nul = bytes.AsSpan().IndexOf((byte)0);
        if (nul >= 0)
            throw new OnnxQuantException(path,
                $"holds a NUL byte at offset {nul}: it is a binary file (or UTF-16 without a byte-order mark), not UTF-8 text; {option} takes UTF-8 text, .jsonl or .ids files");
        int start = bytes is [0xEF, 0xBB, 0xBF, ..] ? 3 : 0;
        if (!Utf8.IsValid(bytes.AsSpan(start)))
        {
            var (invalid, first) = InvalidBytes(bytes.AsSpan(start));
            if (invalid > MaxInvalidShare * bytes.Length)
                throw new OnnxQuantException(path,
                    $"is not UTF-8 text: {invalid} of its {bytes.Length} bytes are not UTF-8 (the first at offset {first + start}); convert it, e.g. iconv -f latin1 -t UTF-8");
        }
        return Encoding.UTF8.GetString(bytes, start, bytes.Length - start);
    }

    private static (int Count, int First) InvalidBytes(ReadOnlySpan<byte> bytes)
    {
        int count = 0, first = -1;
        for (int i = 0; i < bytes.Length;)
        {
            if (Rune.DecodeFromUtf8(bytes[i..], out _, out int used) != System.Buffers.OperationStatus.Done)
            {
                count += used;
                if (first < 0)
                    first = i;
            }
            i += Math.Max(used, 1);
        }
        return (count, first);
    }
}
