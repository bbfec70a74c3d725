namespace OnnxQuant;

/// <summary>
/// A failure the user can act on: bad input, a refused option, an unwritable output.
/// The CLI catches this one type, prints <see cref="Message"/> as a short paragraph and exits with <see cref="ExitCode"/>.
/// Anything else that escapes is a bug.
/// </summary>
public class OnnxQuantException : Exception
{
    public OnnxQuantException(string? file, string problem, ExitCode exitCode = ExitCode.BadInput, Exception? inner = null)
        : base(file is null ? problem : $"{file}: {problem}", inner)
    {
        File = file;
        Problem = problem;
        ExitCode = exitCode;
    }

    /// <summary>The file the problem is about, when there is one.</summary>
    public string? File { get; }

    /// <summary>The problem in plain words, without the file name.</summary>
    public string Problem { get; }

    public ExitCode ExitCode { get; }
}

/// <summary>Process exit codes, documented in the README.</summary>
public enum ExitCode
{
    Ok = 0,
    /// <summary>An unexpected internal error (a bug).</summary>
    InternalError = 1,
    /// <summary>Wrong command-line usage.</summary>
    Usage = 2,
    /// <summary>An input file is missing, unreadable or not a valid model / data file.</summary>
    BadInput = 3,
    /// <summary>The model is valid but cannot be processed as asked (nothing to quantize, unsupported op...).</summary>
    Unsupported = 4,
    /// <summary>The output could not be written.</summary>
    OutputError = 5,
    /// <summary>An accuracy gate failed (the measured figure is outside its bound); the written model is kept.</summary>
    GateFailed = 6,
    /// <summary>Interrupted (Ctrl-C); nothing half-written was left behind (a model written before the interrupt is kept).</summary>
    Interrupted = 130,
}
