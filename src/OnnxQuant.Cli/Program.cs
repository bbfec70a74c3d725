using OnnxQuant.Calibrate.Sessions;

namespace OnnxQuant.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        StartupJit.Start(args);
        using var interrupts = new InterruptSignals();
        try
        {
            // Before any session: a CUDA-enabled ONNX Runtime the user names replaces the bundled one (docs/architecture.md, "Distribution").
            if (OrtLibrary.Configure() is { } library)
                Console.Error.WriteLine($"note: using ONNX Runtime from {library} ({OrtLibrary.Variable})");
        }
        catch (OnnxQuantException e)
        {
            Console.Error.WriteLine(CommandRunner.Wrap("error: " + e.Message, CommandRunner.ParagraphWidth));
            return (int)e.ExitCode;
        }
        return CliApp.Run(args, Console.Out, Console.Error, interrupts.Token);
    }
}
