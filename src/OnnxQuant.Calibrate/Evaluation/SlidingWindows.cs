namespace OnnxQuant.Calibrate.Evaluation;

/// <summary>
/// One forward pass of a sliding-window perplexity: tokens [Start, Start + Length) of the stream are fed, and the
/// positions p >= <see cref="FirstScored"/> of the window are scored (each predicted from the logits at p - 1).
/// </summary>
public readonly record struct ScoredWindow(int Start, int Length, int FirstScored)
{
    public int ScoredTokens => Length - FirstScored;
}

/// <summary>
/// The windows of a sliding-window perplexity over a token stream. Windows are <c>context</c> tokens long and start
/// every <c>stride</c> tokens; each token is scored once, in the first window that reaches it, so every scored token
/// after the first window sees at least <c>context - stride</c> tokens of context. The first token of the stream has no
/// context and is never scored. Only whole windows are run (equal cost per run, and with stride = context exactly the
/// "non-overlapping windows, tokens 1..n-1 of each scored" metric of models/austen-lm/train.py); the tail after the
/// last whole window, shorter than one stride, is not scored. A stream shorter than one window is one short window.
/// </summary>
public static class SlidingWindows
{
    public static IReadOnlyList<ScoredWindow> Plan(int tokens, int context, int stride)
    {
        if (context < 2)
            throw new OnnxQuantException(null, $"--context must be at least 2 tokens (got {context})", ExitCode.Usage);
        if (stride < 1 || stride > context)
            throw new OnnxQuantException(null, $"--stride must be between 1 and --context ({context}); got {stride}", ExitCode.Usage);
        if (tokens < 2)
            throw new OnnxQuantException(null, $"the evaluation text has {tokens} token(s); perplexity needs at least 2", ExitCode.BadInput);
        if (tokens <= context)
            return [new ScoredWindow(0, tokens, 1)];
        var windows = new List<ScoredWindow>();
        int scoredUpTo = 0;
        for (int start = 0; start + context <= tokens; start += stride)
        {
            windows.Add(new ScoredWindow(start, context, Math.Max(1, scoredUpTo - start)));
            scoredUpTo = start + context;
        }
        return windows;
    }
}
