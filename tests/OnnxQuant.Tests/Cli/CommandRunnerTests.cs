using System.CommandLine;
using OnnxQuant.Cli;

namespace OnnxQuant.Tests.Cli;

public class CommandRunnerTests
{
    private static (int Code, string Error) RunThrowing(Exception e, params string[] args)
    {
        var verbose = new Option<bool>("--verbose");
        var stderr = new StringWriter();
        var context = new CliContext(new StringWriter(), stderr, verbose);
        var parse = new RootCommand { verbose }.Parse(args);
        int code = CommandRunner.Run(context, parse, () => throw e);
        return (code, stderr.ToString());
    }

    [Fact]
    public void UnexpectedExceptionIsOneLineWithoutVerbose()
    {
        var (code, error) = RunThrowing(new InvalidOperationException("index out of sync\nsecond line"));

        Assert.Equal(1, code);
        Assert.StartsWith("internal error: InvalidOperationException: index out of sync", error);
        Assert.Contains("--verbose", error);
        Assert.DoesNotContain("second line", error);
        Assert.Equal(2, error.TrimEnd().Split('\n').Length);
    }

    [Fact]
    public void UnexpectedExceptionShowsTheStackTraceWithVerbose()
    {
        var (code, error) = RunThrowing(new InvalidOperationException("boom"), "--verbose");

        Assert.Equal(1, code);
        Assert.Contains(" at ", error);
        Assert.Contains(nameof(CommandRunnerTests), error); // the frame that threw
        Assert.DoesNotContain("Rerun with --verbose", error);
    }

    [Fact]
    public void OnnxQuantExceptionMapsToItsExitCode()
    {
        var (code, error) = RunThrowing(new OnnxQuantException("out.onnx", "cannot be written: disk full", ExitCode.OutputError));

        Assert.Equal(5, code);
        Assert.Equal("error: out.onnx: cannot be written: disk full", error.TrimEnd());
    }

    [Fact]
    public void LongMessagesWrapIntoAParagraph()
    {
        string text = "error: " + string.Join(' ', Enumerable.Repeat("word", 60));

        var lines = CommandRunner.Wrap(text, 40).Split(Environment.NewLine);

        Assert.True(lines.Length > 5);
        Assert.All(lines, l => Assert.True(l.Length <= 40, l));
        Assert.All(lines.Skip(1), l => Assert.StartsWith("  word", l));
        Assert.Equal(60, lines.Sum(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Count(w => w == "word")));
    }
}
