using Spectre.Console;

namespace OnnxQuant.Cli;

/// <summary>
/// A progress bar on stderr for `eval` (windows or sentences done, ETA) when stderr is a terminal; nothing when it is
/// redirected, so --json output and logs stay clean. Ctrl-C cancels between runs.
/// </summary>
internal static class EvalProgress
{
    public static T Run<T>(CliContext context, string label, Func<IProgress<(int Done, int Total)>?, CancellationToken, T> work)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.Cancellation);
        try
        {
            bool terminal = ReferenceEquals(context.Error, Console.Error) && !Console.IsErrorRedirected;
            if (!terminal)
                return work(null, cts.Token);
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            return console.Progress()
                .AutoClear(true)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .Start(ctx => work(new Reporter(ctx.AddTask(label, maxValue: 1), label), cts.Token));
        }
        finally
        {
        }
    }

    // Synchronous on purpose: Progress<T> would post to the thread pool and could draw after the run ended.
    private sealed class Reporter(ProgressTask task, string label) : IProgress<(int Done, int Total)>
    {
        public void Report((int Done, int Total) p)
        {
            task.MaxValue = p.Total;
            task.Value = p.Done;
            task.Description = $"{label} {p.Done}/{p.Total}";
        }
    }
}
