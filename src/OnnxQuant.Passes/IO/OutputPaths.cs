using OnnxQuant.IR;

namespace OnnxQuant.IO;

/// <summary>
/// Checks an output path before a command starts its (possibly hour-long) work, so an unwritable folder or an output
/// that would overwrite an input fails in the first second rather than at the save. The checks do not rely on
/// permission bits alone (root ignores them): a probe file is really created and deleted in the output folder.
/// </summary>
public static class OutputPaths
{
    /// <summary>
    /// Throws <see cref="OnnxQuantException"/> unless <paramref name="path"/> can be created as a new file in an existing,
    /// writable folder and is neither the model <paramref name="input"/> (nor one of its data files) nor any of
    /// <paramref name="otherInputs"/>.
    /// </summary>
    public static void Check(string path, OnnxModel? input, params string?[] otherInputs)
    {
        string full = Path.GetFullPath(path);
        var inputs = new List<string>();
        if (input?.SourcePath is { } source)
            inputs.Add(source);
        if (input is not null)
            inputs.AddRange(input.ExternalDataPaths);
        inputs.AddRange(otherInputs.OfType<string>());
        foreach (var i in inputs)
            if (SamePath(i, full))
                throw new OnnxQuantException(path, $"is also an input ('{i}'); OnnxQuant never writes over its input. Choose another output path", ExitCode.Usage);

        if (Directory.Exists(full))
            throw new OnnxQuantException(path, "cannot be written: it is a folder", ExitCode.OutputError);
        string folder = Path.GetDirectoryName(full) ?? full;
        if (!Directory.Exists(folder))
        {
            string? fileAncestor = FileAncestor(folder);
            throw new OnnxQuantException(path, fileAncestor is null
                ? $"cannot be written: the folder '{folder}' does not exist"
                : $"cannot be written: '{fileAncestor}' is a file, not a folder", ExitCode.OutputError);
        }
        Probe(path, folder);
    }

    /// <summary>Checks a model output: the .onnx path and the <c>.data</c> file that <see cref="ModelFile.Save"/> writes beside it.</summary>
    public static void CheckModel(string path, OnnxModel input, params string?[] otherInputs)
    {
        Check(path, input, otherInputs);
        string data = Path.GetFullPath(path) + ".data";
        foreach (var i in input.ExternalDataPaths.Append(input.SourcePath).Concat(otherInputs).OfType<string>())
            if (SamePath(i, data))
                throw new OnnxQuantException(path, $"would write its weights to '{data}', which the input model reads its weights from. Choose another output name", ExitCode.Usage);
    }

    /// <summary>
    /// Creates a <see cref="SpillFile"/> in the output's folder and attaches it to the model's graph, so tensors a pass
    /// creates go to disk instead of piling up in memory until the save; where the save can, it becomes the output's data
    /// file (<see cref="DataFileWriter"/>). The caller disposes it after saving.
    /// </summary>
    public static SpillFile AttachSpill(OnnxModel model, string outputPath)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(outputPath)) ?? ".";
        StaleTemporaries.Remove(outputPath);   // what a killed run left for this output
        SpillFile spill;
        try
        {
            spill = new SpillFile(folder, mayBecomeOutput: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OnnxQuantException(outputPath, $"cannot be written: no scratch file can be created in '{folder}' ({e.Message})", ExitCode.OutputError, e);
        }
        model.Graph.Spill = spill;
        return spill;
    }

    private static void Probe(string path, string folder)
    {
        string probe = Path.Combine(folder, $".onnxquant-probe-{Environment.ProcessId}-{Guid.NewGuid():N}.tmp");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose))
            {
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OnnxQuantException(path, $"cannot be written: no file can be created in '{folder}' ({e.Message})", ExitCode.OutputError, e);
        }
        finally
        {
            try { File.Delete(probe); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    // The nearest existing ancestor that is a regular file (an output under "model.onnx/out.onnx"), if any.
    private static string? FileAncestor(string folder)
    {
        for (string? dir = folder; !string.IsNullOrEmpty(dir); dir = Path.GetDirectoryName(dir))
        {
            if (File.Exists(dir))
                return dir;
            if (Directory.Exists(dir))
                return null;
        }
        return null;
    }

    /// <summary>True when both paths name the same file, through symbolic links too.</summary>
    public static bool SamePath(string a, string b)
    {
        string fa = Path.GetFullPath(a), fb = Path.GetFullPath(b);
        if (fa == fb)
            return true;
        try
        {
            var ra = new FileInfo(fa).ResolveLinkTarget(true)?.FullName ?? fa;
            var rb = new FileInfo(fb).ResolveLinkTarget(true)?.FullName ?? fb;
            return ra == rb;
        }
        catch (IOException)
        {
            return false;
        }
    }
}
