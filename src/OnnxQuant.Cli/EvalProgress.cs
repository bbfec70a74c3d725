using Spectre.Console;

namespace OnnxQuant.Cli;

/// <summary>
/// Progress on stderr for `eval` (windows or sentences done): a bar with an ETA when stderr is a terminal, else a line per
/// tenth of the work (<see cref="DecileLines"/>), so a log shows the run moving; stdout (--json) stays clean either way.
/// Ctrl-C cancels between runs.
/// </summary>
internal static class EvalProgress
{
    public static T Run<T>(CliContext context, string label, Func<IProgress<(int Done, int Total)>?, CancellationToken, T> work)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.Cancellation);
        bool terminal = ReferenceEquals(context.Error, Console.Error) && !Console.IsErrorRedirected;
        if (!terminal)
            return work(new LineReporter(new DecileLines(context.Error), label), cts.Token);
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        return console.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx => work(new Reporter(ctx.AddTask(label, maxValue: 1), label), cts.Token));
    }

    private sealed class LineReporter(DecileLines lines, string label) : IProgress<(int Done, int Total)>
    {
        public void Report((int Done, int Total) p) => lines.Report(label, p.Done, p.Total);
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
