using System.Text.Json;

namespace OnnxQuant.IO;

/// <summary>
/// Parses an input's JSON so that every key and string is text: System.Text.Json accepts an escaped lone surrogate
/// ("\ud800") and throws only when the string is read, deep inside a reader and not as a JSON error. Found by fuzzing
/// genai_config.json (docs/security.md, "Fuzzing").
/// </summary>
public static class JsonText
{
    /// <summary>The parsed document; a <see cref="JsonException"/> for bad JSON or a string that is not text.</summary>
    public static JsonDocument Parse(string text, JsonDocumentOptions options)
    {
        JsonDocument? document = null;
        try
        {
            // The duplicate-key check unescapes every key, so the parse itself can throw too.
            document = JsonDocument.Parse(text, options);
            EnsureText(document.RootElement);
            return document;
        }
        catch (InvalidOperationException e)
        {
            document?.Dispose();
            throw new JsonException($"a key or string holds an escaped lone surrogate (such as \\ud800), which is not text: {e.Message}", e);
        }
    }

    private static void EnsureText(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    _ = property.Name;
                    EnsureText(property.Value);
                }
                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                    EnsureText(item);
                break;
            case JsonValueKind.String:
                _ = element.GetString();
                break;
        }
    }
}
