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

    /// <summary>Encodes running text without special tokens (they are added per sample).</summary>
    public IReadOnlyList<int> Encode(string text) => Inner switch
    {
        BertTokenizer bert => bert.EncodeToIds(text, addSpecialTokens: false),
        SentencePieceTokenizer sp => sp.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false),
        _ => Inner.EncodeToIds(text),
    };
}
