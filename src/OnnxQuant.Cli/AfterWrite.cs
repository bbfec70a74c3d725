using OnnxQuant.Calibrate.Verification;
using OnnxQuant.IO;
using OnnxQuant.Passes;

namespace OnnxQuant.Cli;

/// <summary>What the quantizing commands (`smooth`, `awq`) share after their passes: stage lines and the checks on the written model.</summary>
internal static class AfterWrite
{
    /// <summary>
    /// Verifies the written model on held-out text (unless <paramref name="verify"/> is false) and times it against the
    /// input when <paramref name="latencyTokens"/> is positive. A failed or interrupted check deletes the output, so the
    /// command leaves nothing behind.
    /// </summary>
    public static (VerificationReport? Verification, LatencyReport? Timing) Check(CliContext context, TextWriter stages, string modelPath, string outPath,
        bool verify, int latencyTokens, int latencyRuns, VerifyOptions options)
    {
        try
        {
            VerificationReport? verification = null;
            if (verify)
            {
                stages.WriteLine("verifying on held-out text");
                verification = Verifier.Compare(modelPath, outPath, options, cancel: context.Cancellation);
            }
            var timing = latencyTokens > 0 ? Verifier.MeasureLatency(modelPath, outPath, latencyTokens, latencyRuns, options) : null;
            return (verification, timing);
        }
        catch
        {
            OutputPaths.DeleteModel(outPath);
            throw;
        }
    }

    /// <summary>One line per tenth of each pass on <paramref name="error"/>: the passes report often, a terminal needs less.</summary>
    public sealed class StageProgress(TextWriter error) : IProgress<PassProgress>
    {
        private string? _pass;
        private int _lastDecile = -1;

        public void Report(PassProgress p)
        {
            if (p.Pass != _pass)
                (_pass, _lastDecile) = (p.Pass, -1);
            int decile = p.Total == 0 ? 10 : p.Done * 10 / p.Total;
            if (decile == _lastDecile)
                return;
            _lastDecile = decile;
            error.WriteLine($"  {p.Pass}: {p.Done}/{p.Total}");
        }
    }
}
