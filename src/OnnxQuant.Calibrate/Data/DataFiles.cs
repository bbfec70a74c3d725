using System.Text;
using System.Text.Json;
using OnnxQuant.IO;

namespace OnnxQuant.Calibrate.Data;

/// <summary>
/// Reads the data files calibration (--data) and verification (--verify-data) take, in the same formats: plain text,
/// JSON lines, or whitespace-separated token ids. JSON lines may be a string, {"text": ...}, an array of ids or
/// {"input_ids": [...]} with an optional "attention_mask" (positions whose mask is 0 are padding and are dropped).
/// A file that holds ids needs no tokenizer.
/// </summary>
public static class DataFiles
{
    /// <summary>The format a file is read in: <paramref name="requested"/>, or by extension when Auto.</summary>
    public static DataFormat FormatOf(string path, DataFormat requested = DataFormat.Auto)
    {
        if (requested != DataFormat.Auto)
            return requested;
        return Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".jsonl" or ".json" => DataFormat.JsonLines,
            ".ids" => DataFormat.Ids,
            _ => DataFormat.Text,
        };
    }

    /// <summary>True when the file holds token ids rather than text (for JSON lines: its first non-blank line does).</summary>
    public static bool IsPreTokenized(string path, DataFormat requested = DataFormat.Auto)
    {
        switch (FormatOf(path, requested))
        {
            case DataFormat.Ids:
                return true;
            case DataFormat.JsonLines when File.Exists(path):
                FileKinds.RequireRegular(path, "a data file");
                var first = File.ReadLines(path).FirstOrDefault(l => !string.IsNullOrWhiteSpace(l));
                if (first is null)
                    return false;
                var text = new StringBuilder();
                var ids = new List<int>();
                ReadJsonLine(path, 1, first, text, ids);
                return text.Length == 0;
            default:
                return false;
        }
    }

    /// <summary>Appends the file's text to <paramref name="text"/> or its ids to <paramref name="ids"/>.</summary>
    public static void Read(string path, DataFormat format, StringBuilder text, List<int> ids)
    {
        FileKinds.RequireRegular(path, "a data file");
        switch (FormatOf(path, format))
        {
            case DataFormat.Ids: ReadIds(path, ids); break;
            case DataFormat.JsonLines: ReadJsonLines(path, text, ids); break;
            default: text.Append(DataText.Read(path, "--data")).Append('\n'); break;
        }
    }

    /// <summary>The token ids of a pre-tokenized file (<see cref="IsPreTokenized"/>), as one stream.</summary>
    public static List<int> ReadTokenIds(string path)
    {
        var text = new StringBuilder();
        var ids = new List<int>();
        Read(path, DataFormat.Auto, text, ids);
        if (text.Length > 0)
            throw new OnnxQuantException(path, "holds text, not token ids");
        if (ids.Count == 0)
            throw new OnnxQuantException(path, "is empty: it holds no token ids");
        return ids;
    }

    private static void ReadIds(string path, List<int> ids)
    {
        int line = 0;
        foreach (var text in File.ReadLines(path))
        {
            line++;
            foreach (var token in text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
            {
                if (!int.TryParse(token, out int id) || id < 0)
                    throw new OnnxQuantException(path, $"line {line}: '{token}' is not a token id (a non-negative integer)");
                ids.Add(id);
            }
        }
    }

    private static void ReadJsonLines(string path, StringBuilder text, List<int> ids)
    {
        int line = 0;
        foreach (var raw in File.ReadLines(path))
        {
            line++;
            if (!string.IsNullOrWhiteSpace(raw))
                ReadJsonLine(path, line, raw, text, ids);
        }
        if (text.Length > 0 && ids.Count > 0)
            throw new OnnxQuantException(path, "mixes text lines and token-id lines; use one kind per file");
    }

    private static void ReadJsonLine(string path, int line, string raw, StringBuilder text, List<int> ids)
    {
        try
        {
            using var doc = JsonDocument.Parse(raw);
            var e = doc.RootElement;
            switch (e.ValueKind)
            {
                case JsonValueKind.String:
                    text.Append(e.GetString()).Append('\n');
                    break;
                case JsonValueKind.Object when e.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String:
                    text.Append(t.GetString()).Append('\n');
                    break;
                case JsonValueKind.Object when e.TryGetProperty("input_ids", out var inputIds) && inputIds.ValueKind == JsonValueKind.Array:
                    AddMasked(path, line, inputIds, e.TryGetProperty("attention_mask", out var mask) ? mask : null, ids);
                    break;
                case JsonValueKind.Array:
                    AddMasked(path, line, e, null, ids);
                    break;
                default:
                    throw new OnnxQuantException(path,
                        $"line {line}: expected a string, an object with a \"text\" field, an array of token ids or an object with an \"input_ids\" array");
            }
        }
        catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException)
        {
            throw new OnnxQuantException(path, $"line {line} is not valid JSON for calibration data: {ex.Message}", ExitCode.BadInput, ex);
        }
    }

    // A batch exported with padding carries its mask: only positions whose mask is 1 are tokens of the text.
    private static void AddMasked(string path, int line, JsonElement inputIds, JsonElement? mask, List<int> ids)
    {
        var values = inputIds.EnumerateArray().Select(v => v.GetInt32()).ToList();
        if (values.Any(v => v < 0))
            throw new OnnxQuantException(path, $"line {line}: token ids must be non-negative integers");
        if (mask is not { ValueKind: JsonValueKind.Array } m)
        {
            if (mask is { ValueKind: not JsonValueKind.Null })
                throw new OnnxQuantException(path, $"line {line}: \"attention_mask\" must be an array of 0 and 1");
            ids.AddRange(values);
            return;
        }
        var keep = m.EnumerateArray().Select(v => v.GetInt32()).ToList();
        if (keep.Count != values.Count || keep.Any(k => k is not (0 or 1)))
            throw new OnnxQuantException(path,
                $"line {line}: \"attention_mask\" must hold one 0 or 1 per input id ({values.Count} ids, {keep.Count} mask entries)");
        ids.AddRange(values.Where((_, i) => keep[i] == 1));
    }
}
