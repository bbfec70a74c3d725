namespace OnnxQuant.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        using var interrupts = new InterruptSignals();
        return CliApp.Run(args, Console.Out, Console.Error, interrupts.Token);
    }
}
