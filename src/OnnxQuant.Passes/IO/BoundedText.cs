namespace OnnxQuant.IO;

/// <summary>
/// Reads a small input file whole (a recipe, a GenAI config, a tokenizer file) within a documented size bound
/// (docs/security.md): a 100 MB recipe or /dev/zero is refused with exit 3 instead of being read without end.
/// </summary>
public static class BoundedText
{
    /// <summary>Bound of a recipe file.</summary>
    public const long RecipeBytes = 1 << 20;

    /// <summary>Bound of genai_config.json.</summary>
    public const long ConfigBytes = 1 << 20;

    /// <summary>Bound of one tokenizer file (the largest public tokenizer.json files are tens of MB).</summary>
    public const long TokenizerBytes = 256L << 20;

    /// <summary>The file as UTF-8 text, a byte-order mark dropped (as File.ReadAllText does; editors on Windows write one).</summary>
    public static string Read(string path, long maxBytes, string what)
    {
        var bytes = ReadBytes(path, maxBytes, what);
        int start = bytes is [0xEF, 0xBB, 0xBF, ..] ? 3 : 0;
        return System.Text.Encoding.UTF8.GetString(bytes, start, bytes.Length - start);
    }

    public static byte[] ReadBytes(string path, long maxBytes, string what)
    {
        if (Directory.Exists(path))
            throw new OnnxQuantException(path, $"is a folder, not a {what}");
        FileKinds.RequireRegular(path, $"a {what}");
        try
        {
            // Read through a bound rather than trusting the length: a device such as /dev/zero reports 0 and never ends.
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            using var buffer = new MemoryStream();
            var chunk = new byte[1 << 16];
            int read;
            while ((read = stream.Read(chunk, 0, chunk.Length)) > 0)
            {
                if (buffer.Length + read > maxBytes)
                    throw new OnnxQuantException(path, $"is over the {maxBytes:N0}-byte bound of a {what}");
                buffer.Write(chunk, 0, read);
            }
            return buffer.ToArray();
        }
        catch (FileNotFoundException e)
        {
            throw new OnnxQuantException(path, $"does not exist (a {what} was expected)", ExitCode.BadInput, e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OnnxQuantException(path, $"cannot be read: {e.Message}", ExitCode.BadInput, e);
        }
    }
}
