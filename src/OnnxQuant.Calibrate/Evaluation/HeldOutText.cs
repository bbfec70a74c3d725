using System.Text;
using System.Text.RegularExpressions;
using OnnxQuant.Calibrate.Data;

namespace OnnxQuant.Calibrate.Evaluation;

/// <summary>
/// Held-out evaluation text: by default Jane Austen's Persuasion (data/persuasion.txt beside the binary, see
/// <see cref="DefaultText"/>), which calibration never reads (it uses Emma). Encoders are measured on sentences, causal LMs on windows of running text.
/// </summary>
public static partial class HeldOutText
{
    public const string DefaultFileName = "persuasion.txt";

    /// <summary>The default held-out file: data/persuasion.txt beside the binary.</summary>
    public static string FindDefault() =>
        DefaultText.Locate(DefaultFileName) ?? throw new OnnxQuantException(Path.Combine(DefaultText.Folder, DefaultFileName),
            "the default held-out text is missing from this onnxquant installation (it ships beside the binary); " +
            "pass a held-out text file with --verify-data (smooth, awq) or --data (eval), or reinstall onnxquant");

    public static string Read(string path)
    {
        if (!File.Exists(path))
            throw new OnnxQuantException(path, "does not exist (the held-out text must be a UTF-8 text file)");
        string text = DataText.Read(path, "held-out text");
        if (string.IsNullOrWhiteSpace(text))
            throw new OnnxQuantException(path, "is empty: there is no text to evaluate on");
        return text;
    }

    /// <summary>
    /// Sentences of <paramref name="text"/>: paragraphs joined into lines, split after . ! ? followed by white space;
    /// kept when they have <paramref name="minWords"/> to <paramref name="maxWords"/> words; then <paramref name="count"/>
    /// of them, evenly spaced through the text (all when fewer).
    /// </summary>
    public static IReadOnlyList<string> Sentences(string text, int count, int minWords = 6, int maxWords = 60)
    {
        string flat = Whitespace().Replace(text, " ");
        var all = SentenceEnd().Split(flat)
            .Select(s => s.Trim())
            .Where(s => { int w = s.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length; return w >= minWords && w <= maxWords; })
            .ToList();
        if (all.Count <= count)
            return all;
        return Enumerable.Range(0, count).Select(i => all[(int)((long)i * all.Count / count)]).ToList();
    }

    /// <summary>
    /// Encoders' samples: <paramref name="count"/> sentences of the text (<see cref="Sentences"/>), tokenized, each cut to
    /// <paramref name="maxTokens"/> tokens with the tokenizer's prefix and suffix around it.
    /// </summary>
    public static List<int[]> SentenceSamples(string textPath, CalibrationTokenizer tokenizer, int count, int maxTokens)
    {
        var sentences = Sentences(Read(textPath), count);
        int body = maxTokens - tokenizer.Prefix.Length - tokenizer.Suffix.Length;
        return sentences.Select(s => tokenizer.Prefix.Concat(tokenizer.Encode(s).Take(body)).Concat(tokenizer.Suffix).ToArray()).ToList();
    }

    /// <summary><paramref name="count"/> windows of <paramref name="length"/> token ids, evenly spaced through the stream.</summary>
    public static IReadOnlyList<int[]> Windows(IReadOnlyList<int> ids, int count, int length, int[] prefix)
    {
        int body = length - prefix.Length;
        int available = ids.Count / body;
        if (available == 0)
            throw new OnnxQuantException(null, $"the held-out text has {ids.Count} tokens, too few for one window of {length}");
        int n = Math.Min(count, available);
        var result = new List<int[]>(n);
        for (int i = 0; i < n; i++)
        {
            int w = (int)((long)i * available / n);
            var window = new int[length];
            prefix.CopyTo(window, 0);
            for (int t = 0; t < body; t++)
                window[prefix.Length + t] = ids[w * body + t];
            result.Add(window);
        }
        return result;
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    [GeneratedRegex(@"(?<=[.!?][""']?)\s+(?=[""']?[A-Z])")]
    private static partial Regex SentenceEnd();
}
