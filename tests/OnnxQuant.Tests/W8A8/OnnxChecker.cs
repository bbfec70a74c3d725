using System.Diagnostics;

namespace OnnxQuant.Tests.W8A8;

/// <summary>Runs Debian's python3-onnx checker on a saved model (an independent check of what OnnxQuant emits).</summary>
internal static class OnnxChecker
{
    private const string Python = "/usr/bin/python3";
    private static readonly Lazy<bool> IsAvailable = new(() => Run("-c \"import onnx\"").ExitCode == 0);

    public static bool Available => IsAvailable.Value;

    /// <summary>Null when onnx.checker.check_model accepts the file (full check, with shape inference); else its message.</summary>
    public static string? Check(string path)
    {
        var (code, output) = Run($"-c \"import onnx, sys; onnx.checker.check_model(sys.argv[1], full_check=True)\" \"{path}\"");
        return code == 0 ? null : output;
    }

    private static (int ExitCode, string Output) Run(string arguments)
    {
        if (!File.Exists(Python))
            return (-1, "no /usr/bin/python3");
        var info = new ProcessStartInfo(Python, arguments) { RedirectStandardError = true, RedirectStandardOutput = true };
        using var process = Process.Start(info)!;
        string output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output);
    }
}

/// <summary>A theory that is skipped when python3-onnx is not installed.</summary>
public sealed class OnnxCheckerTheoryAttribute : TheoryAttribute
{
    public OnnxCheckerTheoryAttribute()
    {
        if (!OnnxChecker.Available)
            Skip = "python3-onnx (Debian) is not installed; onnx.checker cannot run";
    }
}
