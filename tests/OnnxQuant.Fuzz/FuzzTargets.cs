using System.Buffers.Binary;
using System.Text;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Placement;
using OnnxQuant.Recipes;

namespace OnnxQuant.Fuzz;

/// <summary>
/// One harness per reader of untrusted input. Each takes the fuzzer's bytes, lays them out as the files the reader
/// expects, and does what a command does with them. A refusal (<see cref="OnnxQuantException"/>) is the reader working;
/// any other exception escapes and is a finding, exactly as the CLI would report it as an internal error (exit 1).
/// </summary>
public static class FuzzTargets
{
    /// <summary>The harnesses by name; the names are the corpus folders under tests/OnnxQuant.Fuzz/corpus.</summary>
    public static IReadOnlyDictionary<string, Action<byte[], Scratch>> All { get; } = new Dictionary<string, Action<byte[], Scratch>>
    {
        ["onnx"] = OnnxModelWithData,
        ["genai-config"] = GenAiConfig,
        ["recipe"] = RecipeText,
        ["npy"] = Npy,
        ["npz"] = Npz,
        ["tokenizer"] = TokenizerFiles,
        ["data"] = DataFile,
    };

    /// <summary>Runs one input; null when it was accepted, the refusal when it was refused cleanly.</summary>
    public static OnnxQuantException? Run(string target, byte[] input, Scratch scratch)
    {
        scratch.Clear();
        try
        {
            All[target](input, scratch);
            return null;
        }
        catch (OnnxQuantException refusal)
        {
            return refusal;
        }
    }

    // Layout: a 4-byte little-endian length n, n bytes of model.onnx, the rest is model.onnx.data (the external data
    // file the seed models name). Then what `inspect --ep cpu` does: load, analyse, place, read provenance, decode every tensor.
    private static void OnnxModelWithData(byte[] input, Scratch scratch)
    {
        var (model, data) = Split(input);
        string path = scratch.Write("model.onnx", model);
        scratch.Write("model.onnx.data", data);
        using var loaded = ModelFile.Load(path);
        ModelSummary.Create(loaded);
        PlacementCheck.Check(loaded, ExecutionProvider.Cpu);
        ModelProvenance.Read(loaded.Header);
        foreach (var tensor in loaded.Graph.Initializers.Values)
            if (ElementType.IsFloat(tensor.DataType))
                tensor.ToFloats();
    }

    // genai_config.json beside a decoder file: what every command does first with a folder.
    private static void GenAiConfig(byte[] input, Scratch scratch)
    {
        scratch.Write(GenAiFolder.ConfigFileName, input);
        scratch.Write("model.onnx", [1]);
        GenAiFolder.Find(scratch.Folder);
    }

    private static void RecipeText(byte[] input, Scratch scratch)
    {
        var recipe = RecipeFile.Read(scratch.Write("recipe.json", input));
        // A recipe that reads must write back in a form that reads again (what --print-recipe and provenance rely on).
        RecipeFile.Parse(RecipeWriter.Format(recipe), Path.Combine(scratch.Folder, "written.json"));
        recipe.Pipeline();
    }

    private static void Npy(byte[] input, Scratch scratch) => NpyFile.ReadNpy(scratch.Write("ids.npy", input));

    private static void Npz(byte[] input, Scratch scratch) => ArrayFeeds.Load(scratch.Write("feeds.npz", input));

    // The first byte picks the tokenizer format; the rest is its file (for vocab.json, split at the first NUL into
    // vocab.json and merges.txt). Then a sentence is encoded, as calibration does.
    private static void TokenizerFiles(byte[] input, Scratch scratch)
    {
        if (input.Length == 0)
            return;
        var body = input.AsSpan(1);
        string file;
        switch (input[0] % 4)
        {
            case 0: file = scratch.Write("tokenizer.json", body); break;
            case 1: file = scratch.Write("tokenizer.model", body); break;
            case 2:
                int nul = body.IndexOf((byte)0);
                file = scratch.Write("vocab.json", nul < 0 ? body : body[..nul]);
                scratch.Write("merges.txt", nul < 0 ? [] : body[(nul + 1)..]);
                break;
            default: file = scratch.Write("vocab.txt", body); break;
        }
        var tokenizer = TokenizerLoader.LoadFile(file);
        tokenizer.Encode(SampleText);
    }

    private const string SampleText = "It is a truth universally acknowledged, that a single man\nin possession of a good fortune,\t42 times " +
        "— «must be» in want of a wife. Ünïcödé 東京 🙂  done.";

    // The first byte picks the --data format (.ids, .jsonl, text); the rest is the file.
    private static void DataFile(byte[] input, Scratch scratch)
    {
        if (input.Length == 0)
            return;
        string name = (input[0] % 3) switch { 0 => "data.ids", 1 => "data.jsonl", _ => "data.txt" };
        string path = scratch.Write(name, input.AsSpan(1));
        DataFiles.IsPreTokenized(path);
        var text = new StringBuilder();
        var ids = new List<int>();
        DataFiles.Read(path, DataFormat.Auto, text, ids);
    }

    private static (byte[] Model, byte[] Data) Split(byte[] input)
    {
        if (input.Length < 4)
            return (input, []);
        long n = Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(input), input.Length - 4L);
        return (input[4..(int)(4 + n)], input[(int)(4 + n)..]);
    }

    /// <summary>Lays out <paramref name="model"/> and <paramref name="data"/> as the onnx harness reads them.</summary>
    public static byte[] OnnxInput(byte[] model, byte[] data)
    {
        var input = new byte[4 + model.Length + data.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(input, (uint)model.Length);
        model.CopyTo(input, 4);
        data.CopyTo(input, 4 + model.Length);
        return input;
    }
}

/// <summary>A private folder the harnesses write their files into, emptied before each input.</summary>
public sealed class Scratch : IDisposable
{
    public Scratch()
    {
        // tmpfs where there is one: the fuzzer writes a few files per execution.
        string root = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        Folder = Path.Combine(root, $"onnxquant-fuzz-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Folder);
    }

    public string Folder { get; }

    public string Write(string name, ReadOnlySpan<byte> bytes)
    {
        string path = Path.Combine(Folder, name);
        using (var stream = File.Create(path))
            stream.Write(bytes);
        return path;
    }

    public void Clear()
    {
        foreach (var entry in Directory.EnumerateFileSystemEntries(Folder))
        {
            if (Directory.Exists(entry))
                Directory.Delete(entry, recursive: true);
            else
                File.Delete(entry);
        }
    }

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}
