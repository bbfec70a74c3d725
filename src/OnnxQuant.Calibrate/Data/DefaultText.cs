namespace OnnxQuant.Calibrate.Data;

/// <summary>
/// The default calibration text: Jane Austen's Emma (public domain), shipped as models/text/emma.txt in the repository
/// and copied next to the onnxquant binary as data/emma.txt.
/// </summary>
public static class DefaultText
{
    public const string FileName = "emma.txt";

    public static string Find() =>
        Locate(FileName) ?? throw new OnnxQuantException(null,
            $"no calibration data was given and the default text ({FileName}, from models/text in the OnnxQuant repository) was not found " +
            $"in {Path.Combine(AppContext.BaseDirectory, "data")} or any models/text folder above the current directory. Pass --data FILE");

    /// <summary>
    /// A text shipped with onnxquant: data/<paramref name="fileName"/> beside the binary, else models/text/<paramref name="fileName"/>
    /// in the current folder, the binary's folder or any folder above them (a repository checkout); null when none exists.
    /// </summary>
    public static string? Locate(string fileName)
    {
        string beside = Path.Combine(AppContext.BaseDirectory, "data", fileName);
        if (File.Exists(beside))
            return beside;
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "models", "text", fileName);
                if (File.Exists(candidate))
                    return candidate;
            }
        }
        return null;
    }
}
