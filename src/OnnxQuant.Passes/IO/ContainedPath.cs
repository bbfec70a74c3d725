namespace OnnxQuant.IO;

/// <summary>
/// The one rule for every path an input names (external data locations, a GenAI config's decoder): relative, and once
/// resolved through symbolic links, inside the folder of the file that names it (docs/security.md).
/// A model or config is untrusted input: it must not make the tool read or write a file elsewhere.
/// </summary>
public static class ContainedPath
{
    // Links followed along one path before it is taken for a loop (Linux's own bound is 40).
    private const int MaxLinks = 40;

    /// <summary>
    /// The full path of <paramref name="name"/> inside <paramref name="folder"/>, or a bad-input error naming
    /// <paramref name="namingFile"/>, <paramref name="what"/> (e.g. "tensor 'w' names external data location") and where
    /// the name resolves. The file itself need not exist; links on the way to it are followed.
    /// </summary>
    public static string Resolve(string folder, string name, string namingFile, string what)
    {
        // No file system takes a NUL in a name; .NET would throw on it below.
        if (name.Contains('\0'))
            throw new OnnxQuantException(namingFile, $"{what} '{name.Replace("\0", "\\0")}', which holds a NUL character and names no file");
        if (name.Length == 0 || Path.IsPathRooted(name) || name.Contains('\\') && name.Contains(':'))
            throw new OnnxQuantException(namingFile, $"{what} '{name}', an absolute path; only paths relative to {Path.GetFileName(namingFile)}'s folder are allowed");
        string root = Real(Path.GetFullPath(folder));
        string full = Path.GetFullPath(Path.Combine(folder, name));
        string real = Real(full);
        if (!Inside(root, real))
            throw new OnnxQuantException(namingFile, $"{what} '{name}', which resolves to {real}, outside {root}; only files inside the folder are read or written");
        return full;
    }

    /// <summary>True when <paramref name="path"/> lies strictly below <paramref name="folder"/> (both full paths).</summary>
    public static bool Inside(string folder, string path)
    {
        string prefix = folder.EndsWith(Path.DirectorySeparatorChar) ? folder : folder + Path.DirectorySeparatorChar;
        return path.StartsWith(prefix, OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);
    }

    /// <summary>
    /// <paramref name="full"/> with every symbolic link along it resolved, component by component (a link's target may
    /// itself hold links or '..'); components that do not exist yet are kept as they are.
    /// </summary>
    public static string Real(string full)
    {
        string current = Path.GetPathRoot(full) ?? "/";
        var pending = new Stack<string>(full[current.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries).Reverse());
        int links = 0;
        while (pending.TryPop(out var part))
        {
            if (part == ".")
                continue;
            if (part == "..")
            {
                current = Path.GetDirectoryName(current) ?? current;
                continue;
            }
            string next = Path.Combine(current, part);
            string? target = new FileInfo(next).LinkTarget;   // lstat + readlink: files and folders alike, dangling links too
            if (target is null)
            {
                current = next;
                continue;
            }
            if (++links > MaxLinks)
                throw new OnnxQuantException(full, $"has more than {MaxLinks} symbolic links along it (a loop?)");
            // An absolute target restarts from its root; a relative one continues from the link's folder.
            if (Path.IsPathRooted(target))
                current = Path.GetPathRoot(target) ?? "/";
            foreach (var t in target[(Path.IsPathRooted(target) ? current.Length : 0)..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries).Reverse())
                pending.Push(t);
        }
        return current;
    }
}
