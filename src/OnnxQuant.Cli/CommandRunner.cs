using System.CommandLine;

namespace OnnxQuant.Cli;

/// <summary>
/// Runs a command's action with the one error policy of the CLI: an <see cref="OnnxQuantException"/> is the user's
/// problem, printed as a short paragraph with its documented exit code; anything else is a bug, printed as one line
/// (the stack trace only with --verbose).
/// </summary>
public static class CommandRunner
{
    public const int ParagraphWidth = 100;

    public static int Run(CliContext context, ParseResult parse, Func<int> action)
    {
        bool verbose = parse.GetValue(context.Verbose);
        bool json = WantsJson(parse);
        try
        {
            return action();
        }
        catch (OnnxQuantException e)
        {
            context.Error.WriteLine(Wrap("error: " + e.Message, ParagraphWidth));
            if (verbose && e.InnerException is not null)
                context.Error.WriteLine(e.InnerException.ToString());
            return Failed(context, json, e.ExitCode, e.ExitCode.ToString(), e.Message, e.File);
        }
        catch (OperationCanceledException e)
        {
            string message = e is InterruptedAfterWriteException ? e.Message : "interrupted: nothing was written.";
            context.Error.WriteLine(message);
            return Failed(context, json, ExitCode.Interrupted, "Interrupted", message, null);
        }
        catch (Exception e)
        {
            context.Error.WriteLine($"internal error: {e.GetType().Name}: {FirstLine(e.Message)}");
            if (verbose)
                context.Error.WriteLine(e.ToString());
            else
                context.Error.WriteLine("This is a bug in onnxquant. Rerun with --verbose for the stack trace and include it in a report.");
            return Failed(context, json, ExitCode.InternalError, "InternalError", $"{e.GetType().Name}: {FirstLine(e.Message)}", null);
        }
    }

    /// <summary>A failed command's JSON document, so a pipeline reading stdout learns why (stderr keeps the paragraph).</summary>
    public sealed record FailureDocument(FailureDetail Error, int Exit);

    public sealed record FailureDetail(string Kind, string Message, string? File);

    private static int Failed(CliContext context, bool json, ExitCode code, string kind, string message, string? file)
    {
        if (json)
            JsonOutput.Write(context.Out, new FailureDocument(new FailureDetail(kind, message, file), (int)code));
        return (int)code;
    }

    // The command's own --json option, if it has one and it was given.
    private static bool WantsJson(ParseResult parse) =>
        parse.CommandResult.Command.Options.OfType<Option<bool>>().FirstOrDefault(o => o.Name == "--json") is { } option && parse.GetValue(option);

    private static string FirstLine(string text)
    {
        int newline = text.IndexOfAny(['\r', '\n']);
        return newline < 0 ? text : text[..newline];
    }

    /// <summary>Word-wraps <paramref name="text"/> at <paramref name="width"/> columns; continuation lines are indented.</summary>
    public static string Wrap(string text, int width)
    {
        var lines = new List<string>();
        var line = new System.Text.StringBuilder();
        int indent = 0;
        foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.Length > indent && line.Length + 1 + word.Length > width)
            {
                lines.Add(line.ToString());
                line.Clear().Append("  ");
                indent = 2;
            }
            if (line.Length > indent)
                line.Append(' ');
            line.Append(word);
        }
        if (line.Length > 0)
            lines.Add(line.ToString());
        return string.Join(Environment.NewLine, lines);
    }
}
