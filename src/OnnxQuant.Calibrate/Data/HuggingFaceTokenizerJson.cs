using OnnxQuant.IO;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace OnnxQuant.Calibrate.Data;

/// <summary>
/// Reads a Hugging Face tokenizer.json into a Microsoft.ML.Tokenizers tokenizer: BPE models (byte-level like GPT-2,
/// Llama 3, Qwen; or SentencePiece-style with the '▁' word marker like Llama 2, Mistral) and WordPiece models. The
/// special tokens each sequence gets come from its post-processor (template, BERT or RoBERTa style).
/// </summary>
internal static class HuggingFaceTokenizerJson
{
    public static CalibrationTokenizer Load(string path)
    {
        using var doc = JsonDocument.Parse(TokenizerLoader.ReadBounded(path));
        var root = doc.RootElement;
        if (!root.TryGetProperty("model", out var model) || !model.TryGetProperty("type", out var typeElement))
            throw new OnnxQuantException(path, "is not a Hugging Face tokenizer.json: it has no model.type");
        string type = typeElement.GetString() ?? "";
        var (prefix, suffix) = SpecialTokens(root);
        string file = Path.GetFileName(path);
        switch (type)
        {
            case "BPE":
            {
                var vocab = model.GetProperty("vocab").EnumerateObject().Select(p => new KeyValuePair<string, int>(p.Name, p.Value.GetInt32())).ToList();
                var merges = model.GetProperty("merges").EnumerateArray().Select(m => m.ValueKind == JsonValueKind.Array
                    ? $"{m[0].GetString()} {m[1].GetString()}" : m.GetString() ?? "").ToList();
                bool byteLevel = Mentions(root, "pre_tokenizer", "ByteLevel") || Mentions(root, "decoder", "ByteLevel");
                var options = new BpeOptions(vocab) { Merges = merges, ByteLevel = byteLevel };
                if (model.TryGetProperty("unk_token", out var unk) && unk.ValueKind == JsonValueKind.String)
                    options.UnknownToken = unk.GetString();
                if (byteLevel)
                    options.PreTokenizer = new RegexPreTokenizer(new Regex(SplitPattern(root) ?? TokenizerLoader.Gpt2Pattern, RegexOptions.Compiled, CalibrationTokenizer.MatchTimeout), null);
                else
                {
                    // Without a split BPE would see the whole text as one word: cut before each word marker.
                    options.Normalizer = new WordMarkerNormalizer();
                    options.PreTokenizer = new RegexPreTokenizer(new Regex("▁*[^▁]+|▁+", RegexOptions.Compiled), null);
                }
                return new CalibrationTokenizer(BpeTokenizer.Create(options), $"{(byteLevel ? "byte-level " : "SentencePiece-style ")}BPE ({file})", prefix, suffix);
            }
            case "WordPiece":
            {
                var ordered = model.GetProperty("vocab").EnumerateObject().OrderBy(p => p.Value.GetInt32()).Select(p => p.Name);
                var stream = new MemoryStream(Encoding.UTF8.GetBytes(string.Join("\n", ordered) + "\n"));
                bool lower = root.TryGetProperty("normalizer", out var norm) && norm.ValueKind == JsonValueKind.Object
                    && norm.TryGetProperty("lowercase", out var lc) && lc.ValueKind == JsonValueKind.True;
                var bert = BertTokenizer.Create(stream, new BertOptions { LowerCaseBeforeTokenization = lower });
                if (prefix.Length == 0 && suffix.Length == 0)
                    (prefix, suffix) = ([bert.ClassificationTokenId], [bert.SeparatorTokenId]);
                return new CalibrationTokenizer(bert, $"WordPiece ({file}{(lower ? ", lower-case" : "")})", prefix, suffix);
            }
            default:
                throw new OnnxQuantException(path, $"uses a {type} tokenizer model; OnnxQuant reads BPE and WordPiece tokenizer.json files " +
                    "(for SentencePiece Unigram models pass the tokenizer.model file with --tokenizer, or pre-tokenized ids with --data)", ExitCode.Unsupported);
        }
    }

    private static bool Mentions(JsonElement root, string property, string type) =>
        root.TryGetProperty(property, out var e) && e.ValueKind == JsonValueKind.Object && e.GetRawText().Contains($"\"{type}\"", StringComparison.Ordinal);

    // A Split pre-tokenizer's regex (Llama 3, Qwen) replaces GPT-2's pattern.
    private static string? SplitPattern(JsonElement root)
    {
        if (!root.TryGetProperty("pre_tokenizer", out var pre) || pre.ValueKind != JsonValueKind.Object)
            return null;
        var candidates = pre.TryGetProperty("pretokenizers", out var list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray().ToList() : [pre];
        foreach (var p in candidates)
            if (p.TryGetProperty("type", out var t) && t.GetString() == "Split"
                && p.TryGetProperty("pattern", out var pattern) && pattern.TryGetProperty("Regex", out var regex))
                return regex.GetString();
        return null;
    }

    private static (int[] Prefix, int[] Suffix) SpecialTokens(JsonElement root)
    {
        if (!root.TryGetProperty("post_processor", out var post) || post.ValueKind != JsonValueKind.Object)
            return ([], []);
        var processors = post.TryGetProperty("processors", out var list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray().ToList() : [post];
        foreach (var p in processors)
        {
            string kind = p.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "";
            if (kind is "BertProcessing" or "RobertaProcessing")
                return ([p.GetProperty("cls")[1].GetInt32()], [p.GetProperty("sep")[1].GetInt32()]);
            if (kind == "TemplateProcessing" && p.TryGetProperty("single", out var single))
            {
                var prefix = new List<int>();
                var suffix = new List<int>();
                bool afterSequence = false;
                foreach (var piece in single.EnumerateArray())
                {
                    if (piece.TryGetProperty("Sequence", out _))
                        afterSequence = true;
                    else if (piece.TryGetProperty("SpecialToken", out var special))
                    {
                        string id = special.GetProperty("id").GetString() ?? "";
                        foreach (var value in p.GetProperty("special_tokens").GetProperty(id).GetProperty("ids").EnumerateArray())
                            (afterSequence ? suffix : prefix).Add(value.GetInt32());
                    }
                }
                return (prefix.ToArray(), suffix.ToArray());
            }
        }
        return ([], []);
    }

    /// <summary>SentencePiece's convention: words are marked by a leading '▁' in place of the space.</summary>
    private sealed class WordMarkerNormalizer : Normalizer
    {
        public override string Normalize(string original) => "▁" + original.Replace(' ', '▁');

        public override string Normalize(ReadOnlySpan<char> original) => Normalize(original.ToString());
    }
}
