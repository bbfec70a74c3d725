using Google.Protobuf;
using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Tests.Cli;
using DataType = Onnx.TensorProto.Types.DataType;

namespace OnnxQuant.Tests.Reliability;

/// <summary>The files one corpus case runs on; every command reads what it needs from here.</summary>
public sealed record CaseFiles(string Folder)
{
    /// <summary>The model under test (possibly broken).</summary>
    public string Model => Path.Combine(Folder, "model.onnx");

    /// <summary>A healthy model: the other side of `diff`.</summary>
    public string Good => Path.Combine(Folder, "good", "good.onnx");

    /// <summary>Calibration token ids.</summary>
    public string Ids { get; init; } = Path.Combine(Folder, "data.ids");

    /// <summary>Held-out text for `eval`.</summary>
    public string Text { get; init; } = Path.Combine(Folder, "eval.txt");

    /// <summary>A statistics file for `--stats`, when the case has one.</summary>
    public string? Stats { get; init; }

    /// <summary>Where a command that writes puts its output (null: its default in <see cref="OutFolder"/>).</summary>
    public string? Output { get; init; }

    /// <summary>An empty folder for outputs, part of the snapshot: after a failure it must still be empty.</summary>
    public string OutFolder => Path.Combine(Folder, "out");
}

/// <summary>
/// Generates the inputs of the bad-input corpus from a tiny healthy TorchLlama fixture: every broken file is made by
/// code from a good one (truncation, a bit flip, a rewritten external-data entry...), so the corpus needs no binaries.
/// </summary>
public static class CorpusInputs
{
    /// <summary>One layer, hidden 64, vocab 4096 so that models/tiny-llama's byte-level BPE tokenizer fits.</summary>
    public static readonly FixtureOptions Fixture = new()
    {
        Family = FixtureFamily.TorchLlama, Layers = 1, Hidden = 64, Heads = 4, Intermediate = 128, Vocab = 4096, Seed = 11,
    };

    /// <summary>Where built inputs are kept for the test run, so each is generated once and copied per command.</summary>
    public static readonly Lazy<string> TemplateRoot = new(() =>
    {
        string root = Path.Combine(Path.GetTempPath(), "onnxquant-tests", "corpus-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        };
        return root;
    });

    private static readonly Lazy<string> HealthyTemplate = new(() => Build(Path.Combine(TemplateRoot.Value, "healthy")));

    /// <summary>
    /// A healthy case folder: the fixture (weights of at least 1 KiB in model.onnx.data, so external-data cases have a
    /// file to break), a second copy for `diff`, the tokenizer, token ids and evaluation text.
    /// </summary>
    public static CaseFiles Healthy(string folder)
    {
        TempFolder.CopyFolder(HealthyTemplate.Value, folder);
        return new CaseFiles(folder);
    }

    private static string Build(string folder)
    {
        var files = new CaseFiles(folder);
        Directory.CreateDirectory(files.OutFolder);
        Directory.CreateDirectory(Path.GetDirectoryName(files.Good)!);
        SaveProto(FixtureModels.Build(Fixture), files.Model);
        SaveProto(FixtureModels.Build(Fixture), files.Good);
        string tokenizer = Path.Combine(CliHarness.RepoRoot(), "models", "tiny-llama");
        foreach (var name in new[] { "vocab.json", "merges.txt" })
        {
            File.Copy(Path.Combine(tokenizer, name), Path.Combine(folder, name));
            File.Copy(Path.Combine(tokenizer, name), Path.Combine(folder, "good", name));
        }
        var rng = new Random(5);
        File.WriteAllText(files.Ids, string.Join(" ", Enumerable.Range(0, 64).Select(_ => rng.Next(Fixture.Vocab))));
        string persuasion = File.ReadAllText(Path.Combine(CliHarness.RepoRoot(), "models", "text", "persuasion.txt"));
        File.WriteAllText(files.Text, persuasion[..4000]);
        return folder;
    }

    public static void SaveProto(ModelProto proto, string path, long externalThreshold = 1024)
    {
        using var model = OnnxModel.FromProto(proto);
        ModelFile.Save(model, path, new SaveOptions { ExternalThreshold = externalThreshold });
    }

    public static ModelProto ReadProto(string path) => ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));

    public static void WriteProto(ModelProto proto, string path) => File.WriteAllBytes(path, proto.ToByteArray());

    /// <summary>The fixture with one change made to its proto, saved as the case's model.</summary>
    public static void Rewrite(CaseFiles files, Action<ModelProto> change, long externalThreshold = 1024)
    {
        var proto = FixtureModels.Build(Fixture);
        change(proto);
        File.Delete(files.Model);
        File.Delete(files.Model + ".data");
        SaveProto(proto, files.Model, externalThreshold);
    }

    /// <summary>The first quantizable linear's weight initializer (q_proj of layer 0, which shares its input with k and v).</summary>
    public static TensorProto FirstLinearWeight(ModelProto proto)
    {
        using var model = OnnxModel.FromProto(proto.Clone());
        string name = LinearNode.FindAll(model.Graph)[0].WeightName;
        return proto.Graph.Initializer.Single(t => t.Name == name);
    }

    /// <summary>Replaces an fp32 initializer's values (raw_data) by <paramref name="values"/> in <paramref name="type"/>.</summary>
    public static void SetValues(TensorProto tensor, float[] values, long[] shape, DataType type = DataType.Float)
    {
        tensor.FloatData.Clear();
        tensor.Dims.Clear();
        tensor.Dims.AddRange(shape);
        tensor.DataType = (int)type;
        tensor.RawData = ByteString.CopyFrom(FloatCodec.Encode(values, type));
    }

    public static float[] Values(TensorProto tensor) =>
        Tensor.FromBytes(tensor.Name, (DataType)tensor.DataType, tensor.Dims.ToArray(), tensor.RawData.ToByteArray()).ToFloats();

    /// <summary>
    /// Flips single bits at seeded positions of the model file until protobuf refuses it. Most flips land in weight bytes
    /// or names and give a different but well-formed model (undetectable without a checksum, which ONNX has not); the
    /// corpus case is the structural damage the parser can see.
    /// </summary>
    public static (int Offset, int Bit) FlipUntilUnparseable(string path)
    {
        byte[] original = File.ReadAllBytes(path);
        var rng = new Random(17);
        for (int attempt = 0; attempt < 10_000; attempt++)
        {
            int offset = rng.Next(original.Length), bit = rng.Next(8);
            byte[] bytes = (byte[])original.Clone();
            bytes[offset] ^= (byte)(1 << bit);
            try
            {
                ModelProto.Parser.ParseFrom(bytes);
            }
            catch (InvalidProtocolBufferException)
            {
                File.WriteAllBytes(path, bytes);
                return (offset, bit);
            }
        }
        throw new InvalidOperationException("no single bit flip made the model unparseable");
    }

    /// <summary>Points every external tensor at <paramref name="location"/> (the same bytes, a different path).</summary>
    public static void SetExternalLocation(CaseFiles files, string location)
    {
        var proto = ReadProto(files.Model);
        foreach (var t in proto.Graph.Initializer.Where(t => t.DataLocation == TensorProto.Types.DataLocation.External))
            t.ExternalData.Single(e => e.Key == "location").Value = location;
        WriteProto(proto, files.Model);
    }

    /// <summary>A Llama-shaped LM whose only MatMul multiplies by a computed (tied, transposed) embedding: nothing to quantize.</summary>
    public static ModelProto NoConstantLinear()
    {
        var proto = FixtureModels.Build(Fixture with { Layers = 1 });
        var g = proto.Graph;
        var table = g.Initializer.Single(t => t.Name == "model.embed_tokens.weight");
        g.Node.Clear();
        g.Initializer.Clear();
        g.Initializer.Add(table);
        g.ValueInfo.Clear();
        g.Input.Remove(g.Input.Single(i => i.Name == "attention_mask"));
        g.Node.Add(Nodes.Create("Gather", new[] { table.Name, "input_ids" }, new[] { "hidden" }, "/model/embed_tokens/Gather"));
        g.Node.Add(Nodes.Create("Transpose", new[] { table.Name }, new[] { "tied_lm_head" }, "/lm_head/Transpose"));
        g.Node.Add(Nodes.Create("MatMul", new[] { "hidden", "tied_lm_head" }, new[] { "logits" }, "/lm_head/MatMul"));
        return proto;
    }

    /// <summary>Every graph input/output dimension symbolic (even hidden and vocab) and no value_info shapes.</summary>
    public static void MakeAllDimensionsSymbolic(ModelProto proto)
    {
        foreach (var v in proto.Graph.Input.Concat(proto.Graph.Output))
        {
            var dims = v.Type.TensorType.Shape.Dim;
            for (int i = 0; i < dims.Count; i++)
                dims[i] = new TensorShapeProto.Types.Dimension { DimParam = $"{v.Name}_dim{i}" };
        }
        proto.Graph.ValueInfo.Clear();
    }
}
