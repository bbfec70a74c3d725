using System.CommandLine;
using OnnxQuant.Calibrate.Sessions;

namespace OnnxQuant.Cli;

/// <summary>
/// --device and --threads, which every command that runs ONNX Runtime takes: declared once, with one rule for a
/// thread count (at least 0; 0 is one per core).
/// </summary>
internal sealed class SessionArguments
{
    /// <param name="scope">Prefixes the descriptions where the options apply to part of a command ("--numeric: ").</param>
    /// <param name="threadsUse">What the threads run (calibration's reduction uses them too).</param>
    public SessionArguments(string scope = "", string threadsUse = "ONNX Runtime threads")
    {
        Device = new Option<ExecutionDevice>("--device")
        {
            Description = $"{scope}auto tries CUDA and falls back to the CPU; cpu never touches CUDA.",
            DefaultValueFactory = _ => ExecutionDevice.Auto,
        };
        Threads = new Option<int>("--threads") { Description = $"{scope}{threadsUse} (0: one per core).", DefaultValueFactory = _ => 0 };
    }

    public Option<ExecutionDevice> Device { get; }

    public Option<int> Threads { get; }

    public SessionSettings Settings(ParseResult parse, CliContext context) => new()
    {
        Device = parse.GetValue(Device),
        Threads = EvalCommand.AtLeast(parse.GetValue(Threads), 0, "--threads"),
        Verbose = parse.GetValue(context.Verbose),
    };
}
