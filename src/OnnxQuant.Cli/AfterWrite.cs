using Microsoft.ML.OnnxRuntime;
using OnnxQuant.Calibrate.Verification;
using OnnxQuant.Passes;

namespace OnnxQuant.Cli;

/// <summary>What the quantizing commands (`smooth`, `awq`) share after their passes: stage lines and the checks on the written model.</summary>
internal static class AfterWrite
{
    /// <summary>
    /// Verifies the written model on held-out text (unless <paramref name="verify"/> is false) and times it against the
    /// input when <paramref name="latencyTokens"/> is positive. The model is in place by now and is never taken back: a
    /// check that cannot run (missing text or tokenizer, ONNX Runtime refusing the run) is a warning on stderr and a
    /// "did not run" in the summary; an interrupt keeps the model and says so (exit 130).
    /// </summary>
    public static (VerificationOutcome? Verification, LatencyReport? Timing) Check(CliContext context, TextWriter stages, string modelPath, string outPath,
        bool verify, int latencyTokens, int latencyRuns, VerifyOptions options)
    {
        VerificationOutcome? verification = null;
        if (verify)
        {
            stages.WriteLine("verifying on held-out text");
            var report = Attempt(context, outPath, "verification did not run",
                () => Verifier.Compare(modelPath, outPath, options, cancel: context.Cancellation), out string? reason);
            verification = report is not null ? VerificationOutcome.Of(report) : VerificationOutcome.NotRun(reason!);
        }
        var timing = latencyTokens > 0
            ? Attempt(context, outPath, "latency was not measured", () => Verifier.MeasureLatency(modelPath, outPath, latencyTokens, latencyRuns, options), out _)
            : null;
        return (verification, timing);
    }

    private static T? Attempt<T>(CliContext context, string outPath, string what, Func<T> check, out string? reason) where T : class
    {
        reason = null;
        try
        {
            var result = check();
            // The latency probe does not watch the token: an interrupt during it still ends the command as one.
            context.Cancellation.ThrowIfCancellationRequested();
            return result;
        }
        catch (OperationCanceledException)
        {
            throw new InterruptedAfterWriteException(outPath);
        }
        catch (Exception e) when (e is OnnxQuantException or OnnxRuntimeException)
        {
            if (context.Cancellation.IsCancellationRequested)
                throw new InterruptedAfterWriteException(outPath);
            reason = e is OnnxQuantException ? e.Message : $"ONNX Runtime failed: {e.Message.Split('\n')[0]}";
            context.Error.WriteLine(CommandRunner.Wrap($"warning: {what}: {reason} ({outPath} was written and is kept)", CommandRunner.ParagraphWidth));
            return null;
        }
        catch
        {
            // A bug: the runner reports it (exit 1); the user still learns that the model is there.
            context.Error.WriteLine($"note: {outPath} was written and is kept; the check after writing it failed:");
            throw;
        }
    }

    /// <summary>One line per tenth of each pass on <paramref name="error"/>: the passes report often, a terminal needs less.</summary>
    public sealed class StageProgress(TextWriter error) : IProgress<PassProgress>
    {
        private readonly DecileLines _lines = new(error);

        public void Report(PassProgress p) => _lines.Report(p.Pass, p.Done, p.Total);
    }
}

/// <summary>An interrupt after the model was written: the runner prints this message instead of "nothing was written".</summary>
internal sealed class InterruptedAfterWriteException(string output)
    : OperationCanceledException($"interrupted during verification; {output} was written and kept.");
