namespace OnnxQuant.Tests.Reliability;

/// <summary>The user-facing commands the corpus runs every case through.</summary>
public enum CorpusCommand
{
    Inspect,
    Diff,
    Calibrate,
    Smooth,
    Awq,
    Eval,
}

/// <summary>How the corpus calls each command: the smallest settings that still exercise it (tiny data, CPU, one thread).</summary>
public static class CorpusInvocation
{
    private static readonly string[] SmallCalibration = ["--samples", "2", "--seq-len", "8", "--device", "cpu", "--threads", "1"];

    /// <summary>The command's name on the command line.</summary>
    public static string Verb(CorpusCommand command) => command.ToString().ToLowerInvariant();

    public static string[] Args(CorpusCommand command, CaseFiles f) => command switch
    {
        CorpusCommand.Inspect => ["inspect", f.Model],
        CorpusCommand.Diff => ["diff", f.Model, f.Good],
        CorpusCommand.Calibrate => f.Stats is null
            ? ["calibrate", f.Model, "--data", f.Ids, .. SmallCalibration, "-o", OutputOf(command, f)!]
            : ["calibrate", f.Model, "--stats", f.Stats],
        CorpusCommand.Awq => f.Stats is null
            ? ["awq", f.Model, "--data", f.Ids, .. SmallCalibration, "--grid", "2", "--no-verify", "-o", OutputOf(command, f)!]
            : ["awq", f.Model, "--stats", f.Stats, "--grid", "2", "--no-verify", "-o", OutputOf(command, f)!],
        CorpusCommand.Eval => ["eval", f.Model, "--data", f.Text, "--context", "16", "--max-tokens", "48", "--device", "cpu", "--threads", "1"],
        _ => throw new NotSupportedException($"the corpus does not know how to run '{Verb(command)}' yet"),
    };

    /// <summary>The file a command writes on success, or null for commands that only print.</summary>
    public static string? OutputOf(CorpusCommand command, CaseFiles f) => command switch
    {
        CorpusCommand.Calibrate => f.Stats is null ? f.Output ?? Path.Combine(f.OutFolder, "model.calib") : null,
        CorpusCommand.Smooth => f.Output ?? Path.Combine(f.OutFolder, "smooth.onnx"),
        CorpusCommand.Awq => f.Output ?? Path.Combine(f.OutFolder, "awq.onnx"),
        _ => null,
    };

    /// <summary>Commands whose output path can be chosen (the output-path cases apply to these only).</summary>
    public static bool Writes(CorpusCommand command) => command is CorpusCommand.Calibrate or CorpusCommand.Smooth or CorpusCommand.Awq;
}
