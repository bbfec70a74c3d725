using System.Text.Json;

namespace OnnxQuant.IO;

/// <summary>
/// An ONNX Runtime GenAI model folder: genai_config.json naming the decoder model (model.decoder.filename), the model
/// and its data, tokenizer files. A quantizing command given such a folder (or the decoder inside one) writes a folder
/// GenAI loads as a drop-in: the decoder rewritten under the same file name, every other file copied unchanged
/// (docs/architecture.md, "ONNX Runtime GenAI folders").
/// </summary>
public sealed record GenAiFolder(string Folder, string ModelFileName)
{
    public const string ConfigFileName = "genai_config.json";

    /// <summary>The decoder model inside the folder.</summary>
    public string ModelPath => Path.Combine(Folder, ModelFileName);

    /// <summary>
    /// The GenAI folder <paramref name="path"/> is or whose decoder it is; null for a model outside such a folder (or a
    /// model in one that is not the decoder the config names). A folder without genai_config.json is bad input.
    /// </summary>
    public static GenAiFolder? Find(string path)
    {
        if (Directory.Exists(path))
        {
            string config = Path.Combine(path, ConfigFileName);
            if (!File.Exists(config))
                throw new OnnxQuantException(path,
                    $"is a folder without {ConfigFileName}: give the .onnx model file, or an ONNX Runtime GenAI model folder", ExitCode.BadInput);
            return new GenAiFolder(Path.GetFullPath(path), DecoderFileName(config, Path.GetFullPath(path)));
        }
        string folder = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        string beside = Path.Combine(folder, ConfigFileName);
        if (!File.Exists(beside))
            return null;
        string decoder = DecoderFileName(beside, folder);
        return Path.GetFullPath(Path.Combine(folder, decoder)) == Path.GetFullPath(path) ? new GenAiFolder(folder, decoder) : null;
    }

    /// <summary>"models/austen-genai" -> "models/austen-genai-sq" (beside the input folder).</summary>
    public string DefaultOutputFolder(string suffix) => Folder.TrimEnd(Path.DirectorySeparatorChar) + "-" + suffix;

    /// <summary>
    /// Makes <paramref name="outputFolder"/> ready to receive the decoder: created when absent (returns true), accepted
    /// when empty; a file, a non-empty folder or a path ending in .onnx is refused before any work.
    /// </summary>
    public bool PrepareOutput(string outputFolder)
    {
        if (outputFolder.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
            throw new OnnxQuantException(outputFolder,
                $"is a model file name, but the input is an ONNX Runtime GenAI folder ({Folder}), so the output is a folder too: give -o a folder name", ExitCode.Usage);
        if (Path.GetFullPath(outputFolder).TrimEnd(Path.DirectorySeparatorChar) == Folder.TrimEnd(Path.DirectorySeparatorChar))
            throw new OnnxQuantException(outputFolder, "is the input folder; OnnxQuant never writes over its input. Choose another output folder", ExitCode.Usage);
        if (File.Exists(outputFolder))
            throw new OnnxQuantException(outputFolder, "cannot be written: it is a file, and a GenAI output is a folder", ExitCode.OutputError);
        if (Directory.Exists(outputFolder))
        {
            if (Directory.EnumerateFileSystemEntries(outputFolder).Any())
                throw new OnnxQuantException(outputFolder,
                    "is not empty: a GenAI output folder is written whole (model, config, tokenizer). Give -o a new or empty folder", ExitCode.OutputError);
            return false;
        }
        try
        {
            Directory.CreateDirectory(outputFolder);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OnnxQuantException(outputFolder, $"cannot be created ({e.Message})", ExitCode.OutputError, e);
        }
        return true;
    }

    /// <summary>
    /// Copies every file of the input folder but the decoder and its external data (<paramref name="modelFiles"/>) into
    /// <paramref name="outputFolder"/>: config, tokenizer files and anything else GenAI reads. Returns the copied names.
    /// </summary>
    public IReadOnlyList<string> CopyCompanions(string outputFolder, IEnumerable<string> modelFiles)
    {
        var skip = modelFiles.Select(Path.GetFullPath).Append(Path.GetFullPath(ModelPath)).ToHashSet(StringComparer.Ordinal);
        var copied = new List<string>();
        foreach (string file in Directory.EnumerateFiles(Folder).Order(StringComparer.Ordinal))
        {
            if (skip.Contains(Path.GetFullPath(file)))
                continue;
            string target = Path.Combine(outputFolder, Path.GetFileName(file));
            if (File.Exists(target))
                continue; // written by the save (the decoder's own data file)
            try
            {
                File.Copy(file, target);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new OnnxQuantException(target, $"cannot be written ({e.Message}); the quantized decoder is in {outputFolder}, but the folder lacks {Path.GetFileName(file)}", ExitCode.OutputError, e);
            }
            copied.Add(Path.GetFileName(file));
        }
        return copied;
    }

    /// <summary>
    /// Where the decoder's rewrite goes in <paramref name="outputFolder"/>: the same relative name, its subfolders created;
    /// never outside the folder (the name was checked on reading the config).
    /// </summary>
    public string OutputModelPath(string outputFolder)
    {
        string path = ContainedPath.Resolve(outputFolder, ModelFileName, Path.Combine(Folder, ConfigFileName), "model.decoder.filename names");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        return path;
    }

    // model.decoder.filename: a string, relative, inside the folder through any links (ContainedPath); else exit 3.
    private static string DecoderFileName(string configPath, string folder)
    {
        try
        {
            using var document = JsonText.Parse(BoundedText.Read(configPath, BoundedText.ConfigBytes, "GenAI config"), new JsonDocumentOptions { AllowDuplicateProperties = false });
            if (document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("model", out var model)
                && model.ValueKind == JsonValueKind.Object && model.TryGetProperty("decoder", out var decoder)
                && decoder.ValueKind == JsonValueKind.Object && decoder.TryGetProperty("filename", out var file))
            {
                if (file.ValueKind != JsonValueKind.String || file.GetString() is not { Length: > 0 } name)
                    throw new OnnxQuantException(configPath, $"model.decoder.filename must be a file name (a non-empty string), not {file.ValueKind.ToString().ToLowerInvariant()} {file.GetRawText()}");
                ContainedPath.Resolve(folder, name, configPath, "model.decoder.filename names");
                return name;
            }
        }
        catch (JsonException e)
        {
            throw new OnnxQuantException(configPath, $"is not valid JSON ({e.Message})", ExitCode.BadInput, e);
        }
        throw new OnnxQuantException(configPath, "names no decoder model (model.decoder.filename)", ExitCode.BadInput);
    }
}
