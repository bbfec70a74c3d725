using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.IO;

namespace OnnxQuant.Calibrate.Data;

/// <summary>
/// Finds and loads the model's tokenizer: a file or folder given with --tokenizer, else the model's folder. Looked for,
/// in this order: tokenizer.json (Hugging Face; BPE or WordPiece), tokenizer.model (SentencePiece), vocab.json +
/// merges.txt (GPT-2 byte-level BPE), vocab.txt (WordPiece, with [CLS]/[SEP] around each sample).
/// </summary>
public static class TokenizerLoader
{
    // GPT-2's pre-tokenizer split: contractions, letters, digits, other symbols, whitespace runs.
    internal const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <param name="stage">What the tokens are for: only calibration's --data takes pre-tokenized ids, so only its hint offers them.</param>
    public static CalibrationTokenizer Load(string? tokenizerPath, string modelPath, RunStage stage = RunStage.Calibration)
    {
        string folder;
        if (tokenizerPath is not null)
        {
            if (File.Exists(tokenizerPath))
                return LoadFile(tokenizerPath);
            if (!Directory.Exists(tokenizerPath))
                throw new OnnxQuantException(tokenizerPath, "does not exist (--tokenizer takes a tokenizer file or the folder holding it)");
            folder = tokenizerPath;
        }
        else
        {
            folder = Path.GetDirectoryName(Path.GetFullPath(modelPath)) ?? ".";
        }
        foreach (var name in new[] { "tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt" })
        {
            string candidate = Path.Combine(folder, name);
            if (File.Exists(candidate))
                return LoadFile(candidate);
        }
        throw new OnnxQuantException(tokenizerPath ?? modelPath,
            $"no tokenizer found in '{folder}': looked for tokenizer.json, tokenizer.model, vocab.json + merges.txt and vocab.txt. " +
            "Put the model's tokenizer files next to it" + (stage == RunStage.Calibration
                ? ", give one with --tokenizer, or pass pre-tokenized ids (--data ids.jsonl)"
                : " or give one with --tokenizer"));
    }

    public static CalibrationTokenizer LoadFile(string path)
    {
        string name = Path.GetFileName(path).ToLowerInvariant();
        try
        {
            if (name.EndsWith(".json") && name != "vocab.json")
                return HuggingFaceTokenizerJson.Load(path);
            if (name.EndsWith(".model"))
                return SentencePiece(path);
            if (name == "vocab.json" || name.EndsWith(".json"))
                return Gpt2(path, Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "merges.txt"));
            if (name.EndsWith(".txt"))
                return WordPiece(path);
        }
        // A tokenizer file is untrusted input parsed by our reader and Microsoft.ML.Tokenizers alike; whatever either
        // throws on it (a missing key, a wrong type, a malformed protobuf) means the file is not a tokenizer they read.
        catch (Exception e) when (e is not (OnnxQuantException or OutOfMemoryException or OperationCanceledException))
        {
            throw new OnnxQuantException(path, $"cannot be loaded as a tokenizer: its reader failed on it ({e.GetType().Name}: {e.Message})", ExitCode.BadInput, e);
        }
        throw new OnnxQuantException(path, "is not a tokenizer file OnnxQuant knows (tokenizer.json, tokenizer.model, vocab.json with merges.txt, vocab.txt)");
    }

    /// <summary>GPT-2 format: vocab.json (token -> id) and merges.txt, byte-level.</summary>
    public static CalibrationTokenizer Gpt2(string vocabPath, string mergesPath)
    {
        if (!File.Exists(mergesPath))
            throw new OnnxQuantException(vocabPath, $"is a BPE vocabulary but its merges file '{mergesPath}' does not exist");
        using var document = JsonDocument.Parse(ReadBounded(vocabPath));
        var vocab = document.RootElement.EnumerateObject().Select(p => new KeyValuePair<string, int>(p.Name, p.Value.GetInt32())).ToList();
        var merges = Encoding.UTF8.GetString(ReadBounded(mergesPath)).Split('\n')
            .Select(line => line.TrimEnd('\r')).Where(line => line.Length > 0 && !line.StartsWith("#version", StringComparison.Ordinal)).ToList();
        var options = new BpeOptions(vocab)
        {
            Merges = merges,
            ByteLevel = true,
            PreTokenizer = new RegexPreTokenizer(new Regex(Gpt2Pattern, RegexOptions.Compiled), null),
        };
        return new CalibrationTokenizer(BpeTokenizer.Create(options), $"byte-level BPE ({Path.GetFileName(vocabPath)} + {Path.GetFileName(mergesPath)})", [], []);
    }

    /// <summary>
    /// BERT-style vocab.txt. Lower-cases when the vocabulary has no capitalised ASCII word such as "The" (an uncased
    /// model: feeding it "Emma" would give [UNK]). Uncased vocabularies still hold a few upper-case symbols like "ℝ".
    /// </summary>
    public static CalibrationTokenizer WordPiece(string vocabPath)
    {
        var bytes = ReadBounded(vocabPath);
        bool lower = !Encoding.UTF8.GetString(bytes).Split('\n').Select(t => t.Trim()).Any(IsCapitalisedWord);
        var bert = BertTokenizer.Create(new MemoryStream(bytes), new BertOptions { LowerCaseBeforeTokenization = lower });
        return new CalibrationTokenizer(bert, $"WordPiece ({Path.GetFileName(vocabPath)}{(lower ? ", lower-case" : "")})",
            [bert.ClassificationTokenId], [bert.SeparatorTokenId]);
    }

    private static bool IsCapitalisedWord(string token) =>
        token.Length >= 2 && char.IsAsciiLetterUpper(token[0]) && token.Skip(1).All(char.IsAsciiLetterLower);

    public static CalibrationTokenizer SentencePiece(string modelPath)
    {
        var sp = SentencePieceTokenizer.Create(new MemoryStream(ReadBounded(modelPath)), false, false);
        int[] prefix = sp.BeginningOfSentenceId >= 0 ? [sp.BeginningOfSentenceId] : [];
        return new CalibrationTokenizer(sp, $"SentencePiece ({Path.GetFileName(modelPath)})", prefix, []);
    }

    internal static byte[] ReadBounded(string path) => BoundedText.ReadBytes(path, BoundedText.TokenizerBytes, "tokenizer file");
}
