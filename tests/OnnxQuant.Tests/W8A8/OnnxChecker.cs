using System.Diagnostics;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.W8A8;

/// <summary>Runs Debian's python3-onnx checker on a saved model (an independent check of what OnnxQuant emits).</summary>
internal static class OnnxChecker
{
    private const string Python = "/usr/bin/python3";

    /// <summary>
    /// Null when onnx.checker.check_model accepts the file (full check, with shape inference); else its message. Fails the
    /// test with the install hint when python3-onnx is missing.
    /// </summary>
    public static string? Check(string path)
    {
        RequiredArtifact.Require(Artifact.OnnxChecker);
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
