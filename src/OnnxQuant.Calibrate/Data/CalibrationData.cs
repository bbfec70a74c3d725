using System.Text;

namespace OnnxQuant.Calibrate.Data;

/// <summary>How calibration data files are read.</summary>
public enum DataFormat
{
    /// <summary>By extension: .jsonl/.json are JSON lines, .ids pre-tokenized ids, anything else plain text.</summary>
    Auto,
    /// <summary>Plain UTF-8 text, tokenized as one running text.</summary>
    Text,
    /// <summary>One JSON value per line: a string, {"text": ...}, an array of token ids or {"input_ids": [...]} (<see cref="DataFiles"/>).</summary>
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

/// <summary>
/// The token windows to run, each exactly <see cref="SequenceLength"/> ids; or, for non-text data (.npz), the
/// <see cref="Feeds"/> with one empty placeholder per sample in <see cref="Samples"/> and a bound on each sample's
/// activation rows as <see cref="SequenceLength"/>.
/// </summary>
public sealed record CalibrationDataset(IReadOnlyList<int[]> Samples, int SequenceLength, string Description, string TokenizerDescription)
{
    /// <summary>Feeds by input name for models that do not take token ids; null for token windows.</summary>
    public ArrayFeeds? Feeds { get; init; }

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
        if (paths.Any(IsArrays))
            return LoadArrays(paths, options);
        var text = new StringBuilder();
        var ids = new List<int>();
        foreach (var path in paths)
        {
            if (!File.Exists(path))
                throw new OnnxQuantException(path, "does not exist (--data takes text, .jsonl or .ids files)");
            int before = ids.Count;
            DataFiles.Read(path, options.Format, text, ids);
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

    /// <summary>True for a .npz of arrays by input name (non-text data).</summary>
    public static bool IsArrays(string path) => Path.GetExtension(path).Equals(".npz", StringComparison.OrdinalIgnoreCase);

    // The first --samples rows of every array: a .npz is already a chosen set of samples, so no shuffle.
    private static CalibrationDataset LoadArrays(IReadOnlyList<string> paths, DataOptions options)
    {
        if (paths.Count != 1)
            throw new OnnxQuantException(null, $"--data takes one .npz file on its own (got {string.Join(", ", paths.Select(Path.GetFileName))})", ExitCode.Usage);
        var feeds = ArrayFeeds.Load(paths[0]);
        int count = Math.Min(options.Samples, feeds.Count);
        var placeholders = Enumerable.Repeat(Array.Empty<int>(), count).ToList();
        return new CalibrationDataset(placeholders, feeds.RowsPerSample, Path.GetFileName(paths[0]), "arrays by input name") { Feeds = feeds };
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
}
