using OnnxQuant.IR;

namespace OnnxQuant.IO;

/// <summary>
/// The external data files one model refers to, each mapped once. Locations must be relative and stay inside the
/// model's folder, symbolic links resolved (<see cref="ContainedPath"/>): a model file is untrusted input and must not
/// make us read /etc/passwd or a sibling project.
/// </summary>
public sealed class ExternalDataFiles : IDisposable
{
    private readonly Dictionary<string, MappedFile> _open = new(StringComparer.Ordinal);
    private readonly string _folder;

    public ExternalDataFiles(string modelPath)
    {
        ModelPath = modelPath;
        _folder = Path.GetFullPath(Path.GetDirectoryName(Path.GetFullPath(modelPath)) ?? ".");
    }

    public string ModelPath { get; }

    /// <summary>Every data file mapped so far (full paths).</summary>
    public IEnumerable<string> Paths => _open.Values.Select(f => f.Path);

    public MappedFile Open(string location, string tensorName)
    {
        if (_open.TryGetValue(location, out var file))
            return file;
        string full = Resolve(location, tensorName);
        if (!File.Exists(full))
            throw new OnnxQuantException(ModelPath, $"tensor '{tensorName}' is stored in external data file '{location}', which does not exist (looked for {full})");
        try
        {
            file = new MappedFile(full);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OnnxQuantException(full, $"cannot read external data: {e.Message}", ExitCode.BadInput, e);
        }
        _open[location] = file;
        return file;
    }

    private string Resolve(string location, string tensorName)
    {
        if (Path.IsPathRooted(location) || location.Contains('\\') && location.Contains(':'))
            throw new OnnxQuantException(ModelPath, $"tensor '{tensorName}' names an absolute external data location '{location}'; only paths relative to the model's folder are allowed");
        var parts = location.Split('/', '\\');
        if (parts.Any(p => p == ".."))
            throw new OnnxQuantException(ModelPath, $"tensor '{tensorName}' names external data location '{location}', which escapes the model's folder ('..' is not allowed)");
        // The text stays inside; through symbolic links it must too (ContainedPath).
        return ContainedPath.Resolve(_folder, location, ModelPath, $"tensor '{tensorName}' names external data location");
    }

    public void Dispose()
    {
        foreach (var f in _open.Values) f.Dispose();
        _open.Clear();
    }
}
