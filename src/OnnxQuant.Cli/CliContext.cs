using System.CommandLine;
using Spectre.Console;

namespace OnnxQuant.Cli;

/// <summary>Where a command writes and the options every command shares.</summary>
public sealed class CliContext
{
    public CliContext(TextWriter output, TextWriter error, Option<bool> verbose, CancellationToken cancellation = default)
    {
        Out = output;
        Error = error;
        Verbose = verbose;
        Cancellation = cancellation;
    }

    /// <summary>Cancelled by Ctrl-C (SIGINT) or SIGTERM: passes, calibration and saving stop and leave no output.</summary>
    public CancellationToken Cancellation { get; }

    /// <summary>Results only: with --json, the JSON document and nothing else.</summary>
    public TextWriter Out { get; }

    /// <summary>Errors and warnings.</summary>
    public TextWriter Error { get; }

    public Option<bool> Verbose { get; }

    /// <summary>A Spectre console writing to <see cref="Out"/>: colours only on a real terminal, wide tables when piped.</summary>
    public IAnsiConsole CreateConsole()
    {
        bool terminal = ReferenceEquals(Out, Console.Out) && !Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(Out),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        if (!terminal)
            console.Profile.Width = 160;
        return console;
    }

    /// <summary>The --json option, for commands that offer machine-readable output.</summary>
    public static Option<bool> JsonOption() => new("--json")
    {
        Description = "Write the result as JSON to stdout (and nothing else to stdout).",
    };
}
