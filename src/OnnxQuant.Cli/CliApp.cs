using System.CommandLine;

namespace OnnxQuant.Cli;

/// <summary>
/// The `onnxquant` command tree. <see cref="Run"/> takes the output writers so tests run commands in-process and read
/// exactly what a user would see; nothing here writes to <see cref="Console"/> directly.
/// </summary>
public static class CliApp
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancellation = default)
    {
        var verbose = new Option<bool>("--verbose", "-v")
        {
            Description = "Show details of internal errors (stack traces).",
            Recursive = true,
        };
        var context = new CliContext(stdout, stderr, verbose, cancellation);
        var root = new RootCommand("onnxquant: quantization compiler for ONNX language models (SmoothQuant W8A8, AWQ W4A16).")
        {
            verbose,
            InspectCommand.Create(context),
            DiffCommand.Create(context),
            CalibrateCommand.Create(context),
            SmoothCommand.Create(context),
            AwqCommand.Create(context),
            EvalCommand.Create(context),
            RunCommand.Create(context),
        };

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
                stderr.WriteLine($"error: {error.Message}");
            stderr.WriteLine("Run 'onnxquant --help' (or 'onnxquant COMMAND --help') for usage.");
            return (int)ExitCode.Usage;
        }
        return parse.Invoke(new InvocationConfiguration
        {
            Output = stdout,
            Error = stderr,
            EnableDefaultExceptionHandler = false,
            ProcessTerminationTimeout = null, // Program owns SIGINT/SIGTERM (see InterruptSignals)
        });
    }
}
