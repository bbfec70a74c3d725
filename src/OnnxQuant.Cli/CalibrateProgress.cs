using OnnxQuant.Calibrate;
using Spectre.Console;

namespace OnnxQuant.Cli;

/// <summary>
/// Draws calibration progress on stderr (samples, tokens/s, ETA) while a run is going, when stderr is a terminal;
/// redirected stderr gets nothing but the final notices. Ctrl-C (the CLI's cancellation token) cancels the run between batches.
/// </summary>
internal static class CalibrateProgress
{
    [ThreadStatic] private static IProgress<CalibrationProgress>? _current;
    [ThreadStatic] private static CancellationToken _cancel;

    /// <summary>The reporter of the run in progress on this thread (null when nothing is drawn).</summary>
    public static IProgress<CalibrationProgress>? Current => _current;

    public static CancellationToken Cancel => _cancel;

    public static T Run<T>(CliContext context, Func<T> work)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.Cancellation);
        _cancel = cts.Token;
        try
        {
            bool terminal = ReferenceEquals(context.Error, Console.Error) && !Console.IsErrorRedirected;
            if (!terminal)
                return work();
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            return console.Progress()
                .AutoClear(true)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("calibrating", maxValue: 1);
                    _current = new Reporter(task);
                    return work();
                });
        }
        finally
        {
            _current = null;
            _cancel = default;
        }
    }

    // Synchronous on purpose: Progress<T> would post to the thread pool and could draw after the run ended.
    private sealed class Reporter(ProgressTask task) : IProgress<CalibrationProgress>
    {
        public void Report(CalibrationProgress p)
        {
            double tokensPerSecond = p.TokensDone / Math.Max(1e-3, p.Elapsed.TotalSeconds);
            string run = p.Runs > 1 ? $" run {p.Run}/{p.Runs}" : "";
            task.MaxValue = p.SamplesTotal;
            task.Value = p.SamplesDone;
            task.Description = $"calibrating{run}: {p.SamplesDone}/{p.SamplesTotal} samples, {tokensPerSecond:0} tok/s";
        }
    }
}
