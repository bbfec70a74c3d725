using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;

namespace OnnxQuant.Calibrate.Sessions;

/// <summary>
/// Which native ONNX Runtime the process uses (docs/architecture.md, "Distribution"). The packed tool carries the CPU
/// build; <see cref="Variable"/> names a CUDA-enabled libonnxruntime (1.32 or later) the user has, and every session then
/// runs on it, so `--device cuda` and `auto` can reach the GPU. Builds from source carry the CUDA build already.
/// </summary>
public static class OrtLibrary
{
    public const string Variable = "ONNXQUANT_ORT_LIBRARY";

    /// <summary>
    /// Loads the library <see cref="Variable"/> names and routes ONNX Runtime's native calls to it; returns its path, or
    /// null when the variable is unset (the bundled library is used). Must run before the first session; once per process.
    /// </summary>
    public static string? Configure()
    {
        string? path = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrWhiteSpace(path))
            return null;
        if (!File.Exists(path))
            throw new OnnxQuantException(path,
                $"does not exist; {Variable} must name the libonnxruntime.so (onnxruntime.dll) of a CUDA-enabled ONNX Runtime 1.32 or later, or be unset to use the bundled CPU runtime",
                ExitCode.BadInput);
        IntPtr handle;
        try
        {
            handle = NativeLibrary.Load(Path.GetFullPath(path));
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            throw new OnnxQuantException(path,
                $"named by {Variable} cannot be loaded as a native library ({e.Message.Split('\n')[0]}); it must be the libonnxruntime.so (onnxruntime.dll) of ONNX Runtime 1.32 or later, or unset it",
                ExitCode.BadInput, e);
        }
        // The managed package imports "onnxruntime"; everything else it loads (providers) is found beside that library.
        NativeLibrary.SetDllImportResolver(typeof(InferenceSession).Assembly, (name, _, _) =>
            name is "onnxruntime" or "libonnxruntime" or "onnxruntime.dll" or "libonnxruntime.so" ? handle : IntPtr.Zero);
        return path;
    }
}
