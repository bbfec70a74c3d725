using System.Text;
using System.Text.Json;

namespace OnnxQuant.Calibrate.Data;

/// <summary>How calibration data files are read.</summary>
public enum DataFormat
{
    /// <summary>By extension: .jsonl/.json are JSON lines, .ids pre-tokenized ids, anything else plain text.</summary>
    Auto,
    /// <summary>Plain UTF-8 text, tokenized as one running text.</summary>
    Text,
    /// <summary>One JSON value per line: a string, an object with a "text" field, or an array of token ids.</summary>
    JsonLines,
    /// <summary>Token ids (integers separated by white space), used as they are.</summary>
    Ids,
}

/// <summary>What to calibrate on.</summary>
public sealed record DataOptions
{
    /// <summary>Data files; empty means the Austen text shipped with OnnxQuant (Emma).</summary>
    public IReadOnlyList<string> Paths { get; init; } = [];

    public DataFormat Format { get; init; } = DataFormat.Auto;

    /// <summary>A tokenizer file or folder; null looks next to the model.</summary>
    public string? TokenizerPath { get; init; }

    public int Samples { get; init; } = 128;

    public int SequenceLength { get; init; } = 512;

    public int Seed { get; init; }

    /// <summary>The model's vocabulary, when the graph shows it: every id is checked against it before calibrating.</summary>
    public Vocabulary? Vocabulary { get; init; }
}

/// <summary>The token windows to run, each exactly <see cref="SequenceLength"/> ids.</summary>
public sealed record CalibrationDataset(IReadOnlyList<int[]> Samples, int SequenceLength, string Description, string TokenizerDescription)
{
    public long TotalTokens => (long)Samples.Count * SequenceLength;
}

/// <summary>
/// Turns data files into token windows: reads text / JSON lines / ids, tokenizes text with the model's tokenizer,
/// cuts the token stream into non-overlapping windows of contiguous text and picks <c>Samples</c> of them with a
/// seeded shuffle, so the same inputs and seed always give the same windows. Special tokens the model expects
/// ([CLS]/[SEP], BOS) are placed around each window.
/// </summary>
public static class CalibrationData
{
    public static CalibrationDataset Load(DataOptions options, string modelPath)
    {
        if (options.Samples <= 0)
            throw new OnnxQuantException(null, $"--samples must be at least 1 (got {options.Samples})", ExitCode.Usage);
        if (options.SequenceLength <= 0)
            throw new OnnxQuantException(null, $"--seq-len must be at least 1 (got {options.SequenceLength})", ExitCode.Usage);
        var paths = options.Paths.Count > 0 ? options.Paths : [DefaultText.Find()];
        var text = new StringBuilder();
        var ids = new List<int>();
        foreach (var path in paths)
        {
            if (!File.Exists(path))
                throw new OnnxQuantException(path, "does not exist (--data takes text, .jsonl or .ids files)");
            int before = ids.Count;
            switch (FormatOf(path, options.Format))
            {
                case DataFormat.Ids: ReadIds(path, ids); break;
                case DataFormat.JsonLines: ReadJsonLines(path, text, ids); break;
                default: text.Append(File.ReadAllText(path)).Append('\n'); break;
            }
            options.Vocabulary?.EnsureContains(ids, before, path, "--data");
        }
        string description = string.Join(", ", paths.Select(Path.GetFileName));
        int[] prefix = [], suffix = [];
        string tokenizerDescription = "pre-tokenized ids";
        if (text.Length > 0)
        {
            var tokenizer = TokenizerLoader.Load(options.TokenizerPath, modelPath);
            var encoded = tokenizer.Encode(text.ToString());
            options.Vocabulary?.EnsureContains([.. tokenizer.Prefix, .. encoded, .. tokenizer.Suffix], 0, tokenizer.Description, "--tokenizer");
            ids.AddRange(encoded);
            (prefix, suffix, tokenizerDescription) = (tokenizer.Prefix, tokenizer.Suffix, tokenizer.Description);
        }
        var samples = Windows(ids, options, prefix, suffix, description);
        return new CalibrationDataset(samples, options.SequenceLength, description, tokenizerDescription);
    }

    /// <summary>Picks <c>Samples</c> non-overlapping windows of the token stream with a seeded shuffle, in stream order.</summary>
    public static List<int[]> Windows(IReadOnlyList<int> ids, DataOptions options, int[] prefix, int[] suffix, string description)
    {
        int body = options.SequenceLength - prefix.Length - suffix.Length;
        if (body <= 0)
            throw new OnnxQuantException(null, $"--seq-len {options.SequenceLength} leaves no room for text next to the model's {prefix.Length + suffix.Length} special tokens", ExitCode.Usage);
        if (ids.Count == 0)
            throw new OnnxQuantException(description, "is empty: it holds no text or token ids to calibrate on");
        int available = ids.Count / body;
        long needed = (long)options.Samples * body;
        if (available < options.Samples)
            throw new OnnxQuantException(description,
                $"has too little text: {ids.Count} tokens, but {options.Samples} samples x {options.SequenceLength} tokens need {needed}" +
                $"{(prefix.Length + suffix.Length > 0 ? $" (plus {prefix.Length + suffix.Length} special tokens per sample)" : "")}. " +
                "Give more text with --data, or lower --samples / --seq-len");
        var order = Enumerable.Range(0, available).ToArray();
        new Random(options.Seed).Shuffle(order);
        var chosen = order.Take(options.Samples).Order().ToArray();
        var result = new List<int[]>(chosen.Length);
        foreach (int w in chosen)
        {
            var sample = new int[options.SequenceLength];
            prefix.CopyTo(sample, 0);
            for (int i = 0; i < body; i++)
                sample[prefix.Length + i] = ids[w * body + i];
            suffix.CopyTo(sample, prefix.Length + body);
            result.Add(sample);
        }
        return result;
    }

    private static DataFormat FormatOf(string path, DataFormat requested)
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
            if (string.IsNullOrWhiteSpace(raw))
                continue;
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
                    case JsonValueKind.Array:
                        foreach (var v in e.EnumerateArray())
                            ids.Add(v.GetInt32());
                        break;
                    default:
                        throw new OnnxQuantException(path, $"line {line}: expected a string, an object with a \"text\" field, or an array of token ids");
                }
            }
            catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException)
            {
                throw new OnnxQuantException(path, $"line {line} is not valid JSON for calibration data: {ex.Message}", ExitCode.BadInput, ex);
            }
        }
        if (text.Length > 0 && ids.Count > 0)
            throw new OnnxQuantException(path, "mixes text lines and token-id lines; use one kind per file");
    }
}
