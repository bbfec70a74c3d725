using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Calibrate.Evaluation;
using OnnxQuant.Calibrate.Sessions;

namespace OnnxQuant.Calibrate.Verification;

/// <summary>
/// The verification's samples from --verify-data, in the formats --data takes: text is tokenized with the model's
/// tokenizer (sentences for encoders, windows of running text for causal LMs); pre-tokenized ids (.ids, JSON lines of
/// ids) are cut into windows as they are, so no tokenizer is needed.
/// </summary>
internal static class HeldOutSamples
{
    /// <param name="tokenizer">The model's tokenizer; null for pre-tokenized data (ids are windowed as they are).</param>
    public static IReadOnlyList<int[]> Load(string path, CalibrationTokenizer? tokenizer, VerifyOptions options, ModelTask task)
    {
        if (tokenizer is null)
        {
            var ids = DataFiles.ReadTokenIds(path);
            return task == ModelTask.Encoder
                ? HeldOutText.Windows(ids, options.Sentences, options.MaxSentenceTokens, [])
                : HeldOutText.Windows(ids, options.Windows, options.WindowLength, []);
        }
        if (task == ModelTask.Encoder)
            return HeldOutText.SentenceSamples(path, tokenizer, options.Sentences, options.MaxSentenceTokens);
        return HeldOutText.Windows(tokenizer.Encode(HeldOutText.Read(path)), options.Windows, options.WindowLength, tokenizer.Prefix);
    }

    /// <summary>One window of <paramref name="tokens"/> ids for the latency probe.</summary>
    public static int[] LatencySample(string path, string originalPath, VerifyOptions options, int tokens)
    {
        if (CalibrationData.IsArrays(path))
            throw new OnnxQuantException(path, "holds arrays, not text: the latency probe runs token ids (leave --latency off for this model)", ExitCode.Usage);
        if (DataFiles.IsPreTokenized(path))
            return HeldOutText.Windows(DataFiles.ReadTokenIds(path), 1, tokens, [])[0];
        var tokenizer = TokenizerLoader.Load(options.TokenizerPath, originalPath, RunStage.Verification);
        string text = HeldOutText.Read(path);
        var ids = tokenizer.Encode(text[..Math.Min(text.Length, 40 * tokens)]);
        return HeldOutText.Windows(ids, 1, tokens, tokenizer.Prefix)[0];
    }
}
