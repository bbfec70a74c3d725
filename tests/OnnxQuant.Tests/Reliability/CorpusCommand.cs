namespace OnnxQuant.Tests.Reliability;

/// <summary>The user-facing commands the corpus runs every case through.</summary>
public enum CorpusCommand
{
    Inspect,
    Diff,
    Calibrate,
    Smooth,
    /// <summary>`smooth --alpha none --format dynamic`: W8A8 with per-token scales, no calibration, no ONNX Runtime.</summary>
    SmoothDynamic,
    Awq,
    /// <summary>`awq --method rtn`: the same command without calibration, where only the model checks stand guard.</summary>
    AwqRtn,
    Eval,
}

/// <summary>How the corpus calls each command: the smallest settings that still exercise it (tiny data, CPU, one thread).</summary>
public static class CorpusInvocation
{
    private static readonly string[] SmallCalibration = ["--samples", "2", "--seq-len", "8", "--device", "cpu", "--threads", "1"];

    /// <summary>The command's name on the command line.</summary>
    public static string Verb(CorpusCommand command) => command switch
    {
        CorpusCommand.AwqRtn => "awq",
        CorpusCommand.SmoothDynamic => "smooth",
        _ => command.ToString().ToLowerInvariant(),
    };

    public static string[] Args(CorpusCommand command, CaseFiles f) => command switch
    {
        CorpusCommand.Inspect => ["inspect", f.Model],
        CorpusCommand.Diff => ["diff", f.Model, f.Good, "--nodes"], // the table names raw nodes and initializers
        CorpusCommand.Calibrate => f.Stats is null
            ? ["calibrate", f.Model, "--data", f.Ids, .. SmallCalibration, "-o", OutputOf(command, f)!]
            : ["calibrate", f.Model, "--stats", f.Stats],
        CorpusCommand.Smooth => ["smooth", f.Model, .. CalibrationInput(f), "--no-verify", "-o", OutputOf(command, f)!],
        CorpusCommand.SmoothDynamic => ["smooth", f.Model, "--alpha", "none", "--format", "dynamic", "--no-verify", "-o", OutputOf(command, f)!],
        CorpusCommand.Awq => ["awq", f.Model, .. CalibrationInput(f), "--grid", "4", "--group-size", "32", "--no-verify", "-o", OutputOf(command, f)!],
        CorpusCommand.AwqRtn => ["awq", f.Model, "--method", "rtn", "--group-size", "32", "--no-verify", "-o", OutputOf(command, f)!],
        CorpusCommand.Eval => ["eval", f.Model, "--data", f.Text, "--context", "16", "--max-tokens", "48", "--device", "cpu", "--threads", "1"],
        _ => throw new NotSupportedException($"the corpus does not know how to run '{Verb(command)}' yet"),
    };

    // Fresh calibration on the case's ids, or the case's statistics file.
    private static string[] CalibrationInput(CaseFiles f) =>
        f.Stats is null ? ["--data", f.Ids, .. SmallCalibration] : ["--stats", f.Stats, "--device", "cpu"];

    /// <summary>The file a command writes on success, or null for commands that only print.</summary>
    public static string? OutputOf(CorpusCommand command, CaseFiles f) => command switch
    {
        CorpusCommand.Calibrate => f.Stats is null ? f.Output ?? Path.Combine(f.OutFolder, "model.calib") : null,
        CorpusCommand.Smooth or CorpusCommand.SmoothDynamic => f.Output ?? Path.Combine(f.OutFolder, "smooth.onnx"),
        CorpusCommand.Awq or CorpusCommand.AwqRtn => f.Output ?? Path.Combine(f.OutFolder, "awq.onnx"),
        _ => null,
    };

    /// <summary>Commands whose output path can be chosen (the output-path cases apply to these only).</summary>
    public static bool Writes(CorpusCommand command) => command is CorpusCommand.Calibrate or CorpusCommand.Smooth or CorpusCommand.SmoothDynamic or CorpusCommand.Awq or CorpusCommand.AwqRtn;
}
