using Microsoft.ML.OnnxRuntime;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Sessions;

namespace OnnxQuant.Calibrate.Recording;

/// <summary>
/// A sequence longer than the model's limit, found by running it: carries the limit so a caller using a default
/// length can retry at it, while one given explicitly stays a usage error naming the limit.
/// </summary>
public sealed class ContextTooLongException(string label, ContextLimit limit, int requested, RunStage stage, Exception inner)
    : OnnxQuantException(label, limit.TooLong(OrtFailures.LengthOption(stage), requested), ExitCode.Usage, inner)
{
    public ContextLimit Limit { get; } = limit;
}

/// <summary>
/// The longest sequence a model runs, by trying: one short run per candidate length, bisected between one token and
/// the length that failed (about log2(length) runs of at most that length). Used only after a run failed on a model
/// whose structure showed no limit (docs/architecture.md, "Context limits"), so a model that runs pays nothing.
/// </summary>
public static class ContextProbe
{
    /// <summary>
    /// The longest sequence below <paramref name="length"/> that <paramref name="session"/> runs; null when it runs
    /// <paramref name="length"/> tokens, or not even one (then the failure is not about the length). Every probe repeats
    /// <paramref name="token"/>, a token id the model accepts, so a bad id in the data cannot pass for a length limit.
    /// </summary>
    public static int? Longest(InferenceSession session, IReadOnlyList<string> outputs, int token, int length, string label, CancellationToken cancel = default)
    {
        if (length < 2 || Runs(session, outputs, token, length, label) || !Runs(session, outputs, token, 1, label))
            return null;
        int works = 1, fails = length;
        while (fails - works > 1)
        {
            cancel.ThrowIfCancellationRequested();
            int middle = works + (fails - works) / 2;
            if (Runs(session, outputs, token, middle, label))
                works = middle;
            else
                fails = middle;
        }
        return works;
    }

    private static bool Runs(InferenceSession session, IReadOnlyList<string> outputs, int token, int length, string label)
    {
        var (names, values) = InputFeeds.Build(session.InputMetadata, [Enumerable.Repeat(token, length).ToArray()], label, RunStage.Calibration);
        try
        {
            using var runOptions = new RunOptions();
            using var results = session.Run(runOptions, names, values, outputs);
            return true;
        }
        catch (OnnxRuntimeException)
        {
            return false;
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }
}
