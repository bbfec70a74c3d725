namespace OnnxQuant.Calibrate.Data;

/// <summary>
/// The default texts (Jane Austen, public domain, kept in the repository's models/text): Emma for calibration, and the
/// held-out Persuasion. The build copies both next to every binary that uses this library, as data/emma.txt and
/// data/persuasion.txt, and they are read from there only: an installed or published onnxquant has no repository
/// around it, and a text found through the working directory would depend on where the user happens to stand.
/// </summary>
public static class DefaultText
{
    public const string FileName = "emma.txt";

    /// <summary>The folder the default texts ship in: data/ beside the binary.</summary>
    public static string Folder => Path.Combine(AppContext.BaseDirectory, "data");

    public static string Find() =>
        Locate(FileName) ?? throw new OnnxQuantException(Path.Combine(Folder, FileName),
            "the default calibration text is missing from this onnxquant installation (it ships beside the binary); " +
            "pass calibration text or token ids with --data FILE, or reinstall onnxquant");

    /// <summary>data/<paramref name="fileName"/> beside the binary; null when it is not there.</summary>
    public static string? Locate(string fileName)
    {
        string beside = Path.Combine(Folder, fileName);
        return File.Exists(beside) ? beside : null;
    }
}
