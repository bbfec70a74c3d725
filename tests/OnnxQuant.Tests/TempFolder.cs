namespace OnnxQuant.Tests;

/// <summary>A fresh folder under the system temp folder, deleted with everything in it on dispose.</summary>
public sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "onnxquant-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Writes <paramref name="count"/> token ids below <paramref name="vocab"/>, drawn with <paramref name="seed"/>, as calibration data; returns its path.</summary>
    public string RandomIds(int vocab, int seed, int count = 512, string name = "calib.ids")
    {
        string path = File(name);
        var rng = new Random(seed);
        System.IO.File.WriteAllText(path, string.Join(" ", Enumerable.Range(0, count).Select(_ => rng.Next(vocab))));
        return path;
    }

    /// <summary>Every file name in the folder, sorted (to assert that nothing half-written was left).</summary>
    public string[] FileNames() => Directory.GetFiles(Path).Select(System.IO.Path.GetFileName).OfType<string>().Order().ToArray();

    /// <summary>Copies <paramref name="from"/> with everything below it into <paramref name="to"/>.</summary>
    public static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(System.IO.Path.Combine(to, System.IO.Path.GetRelativePath(from, dir)));
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            string target = System.IO.Path.Combine(to, System.IO.Path.GetRelativePath(from, file));
            // A link stays a link (the corpus's symbolic-link cases), not a copy of what it points to.
            if (new FileInfo(file).LinkTarget is { } link)
                System.IO.File.CreateSymbolicLink(target, link);
            else
                System.IO.File.Copy(file, target);
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
