using Google.Protobuf;
using Onnx;
using OnnxQuant.IO;

namespace OnnxQuant.Recipes;

/// <summary>
/// What a written model says about how it was made, in its metadata_props (docs/recipes.md, "Provenance in the written
/// model"): the tool version, the canonical recipe, the input's fingerprint, the calibration data digest and, once the
/// check after writing ran, the verification figures.
/// </summary>
public static class ModelProvenance
{
    public const string VersionKey = "onnxquant.version";
    public const string RecipeKey = "onnxquant.recipe";
    public const string InputKey = "onnxquant.input_fingerprint";
    public const string CalibrationKey = "onnxquant.calibration_digest";
    public const string VerificationKey = "onnxquant.verification";

    public static IReadOnlyList<string> Keys { get; } = [VersionKey, RecipeKey, InputKey, CalibrationKey, VerificationKey];

    /// <summary>Sets the entries known before writing on the model's header (replacing those an earlier run left).</summary>
    public static void Stamp(OnnxModel model, string toolVersion, Recipe recipe, string inputFingerprint, string calibrationDigest)
    {
        Set(model.Header, VersionKey, toolVersion);
        Set(model.Header, RecipeKey, RecipeWriter.Format(recipe, indented: false));
        Set(model.Header, InputKey, inputFingerprint);
        Set(model.Header, CalibrationKey, calibrationDigest);
        // A verification entry from the input's own history does not describe this model.
        var stale = model.Header.MetadataProps.Where(p => p.Key == VerificationKey).ToList();
        foreach (var entry in stale)
            model.Header.MetadataProps.Remove(entry);
    }

    /// <summary>
    /// Adds the verification entry to a written model file. Only the .onnx file (the model proto; weights live in the
    /// external data file beside it) is rewritten, through a temporary file and a rename, so the model stays whole.
    /// </summary>
    public static void AddVerification(string modelPath, string figuresJson)
    {
        ModelProto proto;
        using (var stream = File.OpenRead(modelPath))
            proto = ModelProto.Parser.ParseFrom(stream);
        Set(proto, VerificationKey, figuresJson);
        string temporary = modelPath + StaleTemporaries.NewSuffix();
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
                proto.WriteTo(stream);
            File.Move(temporary, modelPath, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
                File.Delete(temporary);
        }
    }

    /// <summary>The provenance entries a model carries, in <see cref="Keys"/> order (empty when it has none).</summary>
    public static IReadOnlyList<(string Key, string Value)> Read(ModelProto header) =>
        Keys.SelectMany(k => header.MetadataProps.Where(p => p.Key == k).Select(p => (p.Key, p.Value))).ToList();

    private static void Set(ModelProto header, string key, string value)
    {
        var entry = header.MetadataProps.FirstOrDefault(p => p.Key == key);
        if (entry is null)
            header.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        else
            entry.Value = value;
    }
}

/// <summary>
/// One provenance entry of two models side by side (`diff`): the values (null where a model lacks it) and, for JSON
/// values (recipe, verification), the paths of the fields that differ ("passes[1].format", "relative_error").
/// </summary>
public sealed record ProvenanceChange(string Key, string? Before, string? After, IReadOnlyList<string> Differences)
{
    public bool Same => Before == After;

    /// <summary>The entries either model carries, in <see cref="ModelProvenance.Keys"/> order.</summary>
    public static IReadOnlyList<ProvenanceChange> Compare(ModelProto before, ModelProto after)
    {
        var a = ModelProvenance.Read(before).ToDictionary(e => e.Key, e => e.Value);
        var b = ModelProvenance.Read(after).ToDictionary(e => e.Key, e => e.Value);
        return ModelProvenance.Keys.Where(k => a.ContainsKey(k) || b.ContainsKey(k))
            .Select(k => new ProvenanceChange(k, a.GetValueOrDefault(k), b.GetValueOrDefault(k), JsonDifferences(a.GetValueOrDefault(k), b.GetValueOrDefault(k))))
            .ToList();
    }

    private static IReadOnlyList<string> JsonDifferences(string? before, string? after)
    {
        if (before is null || after is null || before == after)
            return [];
        var x = Flatten(before);
        var y = Flatten(after);
        if (x is null || y is null)
            return [];
        return x.Keys.Union(y.Keys).Where(k => x.GetValueOrDefault(k) != y.GetValueOrDefault(k)).Order(StringComparer.Ordinal).ToList();
    }

    // Leaf path -> raw JSON text; null when the value is not JSON.
    private static Dictionary<string, string>? Flatten(string text)
    {
        try
        {
            using var document = IO.JsonText.Parse(text, default);
            var leaves = new Dictionary<string, string>(StringComparer.Ordinal);
            Visit(document.RootElement, "", leaves);
            return leaves;
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    private static void Visit(System.Text.Json.JsonElement e, string path, Dictionary<string, string> leaves)
    {
        switch (e.ValueKind)
        {
            case System.Text.Json.JsonValueKind.Object:
                foreach (var p in e.EnumerateObject())
                    Visit(p.Value, path.Length == 0 ? p.Name : $"{path}.{p.Name}", leaves);
                break;
            case System.Text.Json.JsonValueKind.Array:
                int i = 0;
                foreach (var item in e.EnumerateArray())
                    Visit(item, $"{path}[{i++}]", leaves);
                if (i == 0)
                    leaves[path] = "[]";
                break;
            default:
                leaves[path] = e.GetRawText();
                break;
        }
    }
}
