using OnnxQuant.IO;
using System.Text.Json;
using OnnxQuant.Analysis;
using OnnxQuant.Awq;
using OnnxQuant.Gptq;
using OnnxQuant.Passes;
using OnnxQuant.Passes.W8A8;
using OnnxQuant.Quantization;

namespace OnnxQuant.Recipes;

/// <summary>
/// Reads a recipe file (docs/recipes.md) into a <see cref="Recipe"/>, validating every key before any work: an unknown key,
/// a value of the wrong type or out of range, or a pass list in the wrong order is a usage error naming the key and the
/// file. <see cref="RecipeWriter"/> writes the canonical form back.
/// </summary>
public static class RecipeFile
{
    // Duplicate keys are refused: with "last one wins" a recipe can say one thing to a reader and do another.
    private static readonly JsonDocumentOptions Options = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, AllowDuplicateProperties = false };

    internal static readonly string[] SchemeNames = ["w8a8", "w4", "float"];
    internal static readonly LinearScheme[] Schemes = [LinearScheme.W8A8, LinearScheme.W4, LinearScheme.Float];
    internal static readonly string[] FormatNames = ["int8", "dynamic", "qlinear", "qdq"];
    internal static readonly W8A8Format[] Formats = [W8A8Format.Int8, W8A8Format.Dynamic, W8A8Format.QLinear, W8A8Format.Qdq];
    internal static readonly string[] ScopeNames = ["all", "norm-inputs"];
    internal static readonly SmoothingScope[] Scopes = [SmoothingScope.All, SmoothingScope.NormInputs];
    internal static readonly string[] RoundingNames = ["rtn", "gptq"];
    internal static readonly WeightRounding[] Roundings = [WeightRounding.Rtn, WeightRounding.Gptq];

    /// <summary>bits-plan's "sensitivity" words, which `awq --sensitivity` takes too.</summary>
    public static readonly string[] SensitivityNames = ["linear", "model", "auto"];
    internal static readonly BitsSensitivity[] Sensitivities = [BitsSensitivity.LinearOutput, BitsSensitivity.ModelOutput, BitsSensitivity.Auto];

    /// <summary>The sensitivity a word of <see cref="SensitivityNames"/> names.</summary>
    public static BitsSensitivity ParseSensitivity(string word) =>
        Array.IndexOf(SensitivityNames, word) is var i and >= 0 ? Sensitivities[i] : throw new ArgumentOutOfRangeException(nameof(word), word, "not a sensitivity");

    internal static readonly string[] TaskNames = ["causal-lm", "encoder"];
    internal static readonly ModelTask[] Tasks = [ModelTask.CausalLm, ModelTask.Encoder];

    /// <summary>Reads and validates <paramref name="path"/>; relative paths inside resolve against its folder.</summary>
    public static Recipe Read(string path)
    {
        return Parse(BoundedText.Read(path, BoundedText.RecipeBytes, "recipe"), path);
    }

    /// <summary>Parses recipe text; <paramref name="path"/> names the file in errors and anchors relative paths.</summary>
    public static Recipe Parse(string text, string path)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        try
        {
            using var document = JsonText.Parse(text, Options);
            return Parse(new JsonFields(document.RootElement, ""), folder);
        }
        catch (JsonException e)
        {
            throw new OnnxQuantException(path, $"is not valid JSON: {e.Message}", ExitCode.Usage, e);
        }
        catch (RecipeError e)
        {
            throw new OnnxQuantException(path, $"is not a valid recipe: {e.Message} (docs/recipes.md lists the keys)", ExitCode.Usage, e);
        }
    }

    private static Recipe Parse(JsonFields root, string folder)
    {
        int version = root.Int("recipe", int.MinValue, int.MaxValue) ?? throw new RecipeError("recipe", "is missing: write \"recipe\": 1");
        if (version != Recipe.Version)
            throw new RecipeError("recipe", $"must be {Recipe.Version} (got {version}): this onnxquant reads recipe version {Recipe.Version}");
        var entries = root.Array("passes");
        if (entries.Count == 0)
            throw new RecipeError("passes", "must list at least one pass");
        var passes = entries.Select((e, i) => ReadPass(new JsonFields(e, $"passes[{i}]"))).ToList();
        CheckOrder(passes);
        passes = passes.Select((p, i) => PassRegistry.For(p).Settle(p, entries[i], passes, i)).ToList();
        var linears = ReadLinears(root.Object("linears"), passes);
        var calibration = ReadCalibration(root.Object("calibration"), folder);
        var verification = ReadVerification(root.Object("verification"), folder);
        var gates = ReadGates(root.Object("gates"));
        root.Done();
        if (gates.Any && !verification.Enabled)
            throw new RecipeError(GateBounds.RecipeKey(gates.Given[0].Gate), "needs verification, but verification.enabled is false: a gate that cannot be measured is not a pass");
        return new Recipe(passes, linears, calibration, verification, gates);
    }

    private static PassSpec ReadPass(JsonFields f)
    {
        string name = f.String("pass") ?? throw new RecipeError(f.KeyPath("pass"), $"is missing: name the pass ({PassRegistry.Names})");
        var declaration = PassRegistry.Find(name)
            ?? throw new RecipeError(f.KeyPath("pass"), $"must be one of {PassRegistry.Names} (got \"{name}\")");
        var spec = declaration.Read(f);
        f.Done();
        return spec;
    }

    // fold-weights first; each pass once; each search before the rewrite it measures for.
    private static void CheckOrder(List<PassSpec> passes)
    {
        if (passes[0].Name != "fold-weights")
            throw new RecipeError("passes[0].pass", $"must be \"fold-weights\" (the rewrites compute with folded weight chains; got \"{passes[0].Name}\")");
        for (int i = 0; i < passes.Count; i++)
        {
            int first = passes.FindIndex(p => p.Name == passes[i].Name);
            if (first != i)
                throw new RecipeError($"passes[{i}].pass", $"repeats \"{passes[i].Name}\" (already passes[{first}]); each pass runs at most once");
        }
        int Index(string name) => passes.FindIndex(p => p.Name == name);
        if (Index("smoothquant") is >= 0 and var s && Index("w8a8") is >= 0 and var w && w < s)
            throw new RecipeError($"passes[{s}].pass", "\"smoothquant\" must come before \"w8a8\" (it measures the error of that rewrite)");
        if (Index("awq") is >= 0 and var a)
        {
            int r = Index("w4-rewrite");
            if (r < 0 || r < a)
                throw new RecipeError($"passes[{a}].pass", "\"awq\" must be followed by \"w4-rewrite\" (it searches scales for that rewrite)");
        }
        if (Index("bits-plan") is >= 0 and var plan)
        {
            int r = Index("w4-rewrite");
            if (r < 0 || r < plan)
                throw new RecipeError($"passes[{plan}].pass", "\"bits-plan\" must be followed by \"w4-rewrite\" (it plans the bits of that rewrite)");
            if (Index("awq") is >= 0 and var search && search > plan)
                throw new RecipeError($"passes[{plan}].pass", "\"bits-plan\" must come after \"awq\" (it measures the weights as AWQ scaled them)");
        }
        // The embeddings pass runs last: the linears' passes leave the head at its own bits, and the embedding it may share, alone.
        if (Index("embeddings") is >= 0 and var e && e != passes.Count - 1)
            throw new RecipeError($"passes[{e}].pass", $"\"embeddings\" must be the last pass (after \"{passes[^1].Name}\")");
    }

    private static LinearAssignment ReadLinears(JsonFields? f, List<PassSpec> passes)
    {
        bool Has(LinearScheme scheme) => Recipe.RewriteOf(scheme) is not { } rewrite || passes.Any(p => p.RewriteOfLinears == rewrite);
        var present = Schemes.Where(s => s != LinearScheme.Float && Has(s)).ToList();
        LinearScheme? given = f?.Choice("default", SchemeNames, Schemes);
        if (given is null && present.Count > 1)
            throw new RecipeError("linears.default", "is missing: with both a w8a8 and a w4 rewrite, say which scheme linears no override matches get (\"w8a8\", \"w4\" or \"float\")");
        var fallback = given ?? (present.Count == 1 ? present[0] : LinearScheme.Float);
        if (!Has(fallback))
            throw new RecipeError("linears.default", $"is \"{Name(fallback)}\", but no pass in \"passes\" applies it");
        var overrides = new List<SchemeOverride>();
        var entries = f?.Array("overrides") ?? [];
        for (int i = 0; i < entries.Count; i++)
        {
            var o = new JsonFields(entries[i], $"linears.overrides[{i}]");
            string? pattern = o.String("match");
            LinearScheme? scheme = o.Choice("scheme", SchemeNames, Schemes);
            o.Done();
            string match = pattern ?? throw new RecipeError(o.KeyPath("match"), "is missing: a glob (*, ?) or /regex/ over node names");
            var target = scheme ?? throw new RecipeError(o.KeyPath("scheme"), "is missing: \"w8a8\", \"w4\" or \"float\"");
            try
            {
                _ = new LinearSelection([match]);
            }
            catch (OnnxQuantException e)
            {
                throw new RecipeError(o.KeyPath("match"), $"is not a valid pattern: {e.Message}");
            }
            if (!Has(target))
                throw new RecipeError(o.KeyPath("scheme"), $"is \"{Name(target)}\", but no pass in \"passes\" applies it");
            overrides.Add(new SchemeOverride(match, target));
        }
        bool lmHead = f?.Bool("includeLmHead", false) ?? false;
        f?.Done();
        if (!lmHead && passes.FindIndex(p => p.OwnLmHeadBits is not null) is >= 0 and var head)
            throw new RecipeError($"passes[{head}].lmHeadBits", "gives the LM head its own bits, but linears.includeLmHead is false: set it to true, or lmHeadBits to null");
        return new LinearAssignment(fallback, lmHead, overrides);
    }

    private static CalibrationSettings ReadCalibration(JsonFields? f, string folder)
    {
        if (f is null)
            return new CalibrationSettings();
        var data = f.Array("data").Select((e, i) => e.ValueKind == JsonValueKind.String && e.GetString() is { Length: > 0 } s
            ? Path.GetFullPath(s, folder)
            : throw new RecipeError($"calibration.data[{i}]", $"must be a file path (got {JsonFields.Describe(e)})")).ToList();
        var settings = new CalibrationSettings
        {
            Data = data,
            Stats = f.String("stats") is { } stats ? Path.GetFullPath(stats, folder) : null,
            Tokenizer = f.String("tokenizer") is { } tokenizer ? Path.GetFullPath(tokenizer, folder) : null,
            Samples = f.Int("samples", 1, 1_000_000) ?? 128,
            SeqLen = f.Int("seqLen", 2, 1 << 20),
            Seed = f.Int("seed", int.MinValue, int.MaxValue) ?? 0,
            SampleRows = f.Int("sampleRows", 1, MaxSampleRows),
        };
        f.Done();
        if (settings.Stats is not null && settings.Data.Count > 0)
            throw new RecipeError("calibration.stats", "and calibration.data both name statistics' source; give one");
        return settings;
    }

    private static VerificationSettings ReadVerification(JsonFields? f, string folder)
    {
        if (f is null)
            return new VerificationSettings();
        var settings = new VerificationSettings
        {
            Enabled = f.Bool("enabled", true),
            Data = f.String("data") is { } data ? Path.GetFullPath(data, folder) : null,
            Samples = f.Int("samples", 1, 1_000_000),
            Length = f.Int("length", 2, 1 << 20),
            Task = f.Choice("task", TaskNames, Tasks),
        };
        f.Done();
        return settings;
    }

    private static GateBounds ReadGates(JsonFields? f)
    {
        if (f is null)
            return GateBounds.None;
        var gates = new GateBounds
        {
            MaxPplIncrease = f.Number("maxPplIncrease", -100, double.MaxValue),
            MinCosine = f.Number("minCosine", -1, 1),
            MinTop1 = f.Number("minTop1", 0, 100),
        };
        f.Done();
        return gates;
    }

    /// <summary>Activation rows per tensor a recipe may ask for (65536 rows of a 4096-wide tensor are 1 GiB).</summary>
    public const int MaxSampleRows = 65536;
    internal static string Pick<T>(string[] names, T[] values, T value) where T : struct => names[Array.IndexOf(values, value)];

    /// <summary>"w8a8", "w4" or "float", as a recipe spells the scheme.</summary>
    public static string Name(LinearScheme scheme) => SchemeNames[Array.IndexOf(Schemes, scheme)];
}
