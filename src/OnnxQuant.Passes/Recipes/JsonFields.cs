using System.Globalization;
using System.Text.Json;

namespace OnnxQuant.Recipes;

/// <summary>A recipe value that is wrong: the key's path ("passes[2].format") and what is wrong with it.</summary>
public sealed class RecipeError(string key, string problem) : Exception($"{key} {problem}")
{
    public string Key { get; } = key;
}

/// <summary>
/// One JSON object of a recipe read field by field: every read names its key, and <see cref="Done"/> refuses the keys
/// nothing read (an unknown key is a typo the user must hear about, not a silent default).
/// </summary>
internal sealed class JsonFields
{
    private readonly JsonElement _element;
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    public JsonFields(JsonElement element, string path)
    {
        Path = path;
        if (element.ValueKind != JsonValueKind.Object)
            throw new RecipeError(path.Length == 0 ? "the recipe" : path, $"must be an object (got {Describe(element)})");
        _element = element;
    }

    public string Path { get; }

    public string KeyPath(string key) => Path.Length == 0 ? key : $"{Path}.{key}";

    /// <summary>The value of <paramref name="key"/>, or null when absent or JSON null.</summary>
    public JsonElement? Get(string key)
    {
        _read.Add(key);
        return _element.TryGetProperty(key, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;
    }

    public bool Bool(string key, bool fallback) => Get(key) switch
    {
        null => fallback,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        { } other => throw new RecipeError(KeyPath(key), $"must be true or false (got {Describe(other)})"),
    };

    public int? Int(string key, int min, int max)
    {
        if (Get(key) is not { } value)
            return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out int n))
            throw new RecipeError(KeyPath(key), $"must be an integer (got {Describe(value)})");
        if (n < min || n > max)
            throw new RecipeError(KeyPath(key), $"must be between {Text(min)} and {Text(max)} (got {Text(n)})");
        return n;
    }

    public double? Number(string key, double min, double max)
    {
        if (Get(key) is not { } value)
            return null;
        if (value.ValueKind != JsonValueKind.Number)
            throw new RecipeError(KeyPath(key), $"must be a number (got {Describe(value)})");
        double x = value.GetDouble();
        if (!double.IsFinite(x) || x < min || x > max)
            throw new RecipeError(KeyPath(key), $"must be between {Text(min)} and {Text(max)} (got {Text(x)})");
        return x;
    }

    public string? String(string key)
    {
        if (Get(key) is not { } value)
            return null;
        if (value.ValueKind != JsonValueKind.String)
            throw new RecipeError(KeyPath(key), $"must be a string (got {Describe(value)})");
        return value.GetString();
    }

    /// <summary>One of <paramref name="names"/> (the JSON spellings, in the order of <paramref name="values"/>).</summary>
    public T? Choice<T>(string key, string[] names, T[] values) where T : struct
    {
        if (String(key) is not { } text)
            return null;
        int i = System.Array.IndexOf(names, text);
        if (i < 0)
            throw new RecipeError(KeyPath(key), $"must be one of {string.Join(", ", names.Select(n => $"\"{n}\""))} (got \"{text}\")");
        return values[i];
    }

    public IReadOnlyList<JsonElement> Array(string key)
    {
        if (Get(key) is not { } value)
            return [];
        if (value.ValueKind != JsonValueKind.Array)
            throw new RecipeError(KeyPath(key), $"must be an array (got {Describe(value)})");
        return value.EnumerateArray().ToList();
    }

    public JsonFields? Object(string key) => Get(key) is { } value ? new JsonFields(value, KeyPath(key)) : null;

    /// <summary>Refuses keys no read asked for, naming the first one and the keys this object knows.</summary>
    public void Done()
    {
        foreach (var property in _element.EnumerateObject())
            if (!_read.Contains(property.Name))
                throw new RecipeError(KeyPath(property.Name), $"is not a known key (known here: {string.Join(", ", _read.Order(StringComparer.Ordinal))})");
    }

    public static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => $"\"{value.GetString()}\"",
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        _ => value.GetRawText(),
    };

    private static string Text(double x) => x.ToString(CultureInfo.InvariantCulture);
}
