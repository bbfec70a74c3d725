using Microsoft.ML.Tokenizers;

namespace OnnxQuant.Calibrate.Data;

/// <summary>
/// A tokenizer plus the special tokens the model expects around each sample ([CLS] ... [SEP] for BERT-style
/// WordPiece models, a beginning-of-sequence token for SentencePiece LLMs, nothing for GPT-2 style BPE).
/// </summary>
public sealed class CalibrationTokenizer
{
    public CalibrationTokenizer(Tokenizer inner, string description, int[] prefix, int[] suffix)
    {
        Inner = inner;
        Description = description;
        Prefix = prefix;
        Suffix = suffix;
    }

    public Tokenizer Inner { get; }

    /// <summary>What was loaded, e.g. "WordPiece (vocab.txt, lower-case)".</summary>
    public string Description { get; }

    /// <summary>Token ids every sample starts with.</summary>
    public int[] Prefix { get; }

    /// <summary>Token ids every sample ends with.</summary>
    public int[] Suffix { get; }

    /// <summary>A pre-tokenizer pattern read from a tokenizer file gets this long per match (a crafted one could backtrack for ever).</summary>
    public static readonly TimeSpan MatchTimeout = TimeSpan.FromSeconds(2);

    /// <summary>Encodes running text without special tokens (they are added per sample).</summary>
    public IReadOnlyList<int> Encode(string text)
    {
        try
        {
            return Inner switch
            {
                BertTokenizer bert => bert.EncodeToIds(SpacesOnly(text), addSpecialTokens: false),
                SentencePieceTokenizer sp => sp.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false),
                _ => Inner.EncodeToIds(text),
            };
        }
        // The tokenizer was built from an untrusted file: a vocabulary or merges list that loads can still fail on text.
        catch (Exception e) when (e is not (OutOfMemoryException or OperationCanceledException))
        {
            throw new OnnxQuantException(null,
                $"the tokenizer {Description} fails on the text ({e.GetType().Name}: {e.Message}); check the tokenizer files, or pass pre-tokenized ids with --data",
                ExitCode.BadInput, e);
        }
    }

    // Microsoft.ML.Tokenizers 2.0.1's BERT pre-tokenizer does not split at line breaks or tabs ("sat\nthe" became one
    // [UNK]); BERT's own basic tokenizer treats every white space as a separator, so map them all to spaces.
    private static string SpacesOnly(string text) =>
        string.Create(text.Length, text, (dst, src) =>
        {
            for (int i = 0; i < src.Length; i++)
                dst[i] = char.IsWhiteSpace(src[i]) ? ' ' : src[i];
        });
}
