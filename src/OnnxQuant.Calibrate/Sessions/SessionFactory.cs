using Microsoft.ML.OnnxRuntime;

namespace OnnxQuant.Calibrate.Sessions;

/// <summary>Where sessions run: <c>auto</c> tries CUDA and falls back to the CPU, <c>cuda</c> insists, <c>cpu</c> never touches CUDA.</summary>
public enum ExecutionDevice
{
    Auto,
    Cuda,
    Cpu,
}

/// <summary>How to build ONNX Runtime sessions.</summary>
public sealed record SessionSettings
{
    public ExecutionDevice Device { get; init; } = ExecutionDevice.Auto;

    /// <summary>Intra-op threads; 0 lets ONNX Runtime choose (one per core).</summary>
    public int Threads { get; init; }

    public GraphOptimizationLevel Optimization { get; init; } = GraphOptimizationLevel.ORT_ENABLE_ALL;

    /// <summary>Let ONNX Runtime's own log lines (warnings and errors) reach stderr; off, its failures reach the user only in our words.</summary>
    public bool Verbose { get; init; }
}

/// <summary>A session and what it runs on.</summary>
public sealed record OpenedSession(InferenceSession Session, string Device, string? Notice) : IDisposable
{
    public void Dispose() => Session.Dispose();
}

/// <summary>
/// Creates ONNX Runtime sessions on the chosen device. The loaded runtime is asked first whether it was built with the
/// CUDA provider: the CPU build the packed tool bundles has no CUDA entry point at all, so touching one there would
/// crash. A CUDA build lists the provider even without a GPU, so <c>auto</c> then tries CUDA, catches any failure and
/// falls back to the CPU with a one-line notice; ORT's own log is kept quiet meanwhile so the failed load prints nothing.
/// </summary>
public static class SessionFactory
{
    /// <summary>"1": CUDA sessions refuse to place any node on the CPU (ONNX Runtime's session.disable_cpu_ep_fallback).</summary>
    public const string NoCpuFallbackVariable = "ONNXQUANT_NO_CPU_FALLBACK";

    private static readonly object EnvLock = new();
    private static bool? _cudaWorks;

    // Why CUDA failed the first time: later sessions skip the attempt (seconds each) but still say why they run on the CPU.
    private static string? _cudaFailure;

    /// <summary>
    /// Opens a session over a serialised model. <paramref name="externalDataFolder"/> is where the model's external data
    /// references are resolved (the original model's folder), so recording copies never duplicate the weights on disk.
    /// </summary>
    public static OpenedSession Open(byte[] model, SessionSettings settings, string? externalDataFolder, string modelLabel)
    {
        if (settings.Device != ExecutionDevice.Cpu && _cudaWorks != false)
        {
            try
            {
                if (!RuntimeHasCuda())
                    throw new CudaUnavailableException("this ONNX Runtime is a CPU-only build");
                var session = Create(model, settings, externalDataFolder, useCuda: true);
                _cudaWorks = true;
                return new OpenedSession(session, "cuda", null);
            }
            catch (Exception e) when (IsProbeFailure(e))
            {
                _cudaFailure = FirstLine(e.Message);
                _cudaWorks = false;
                if (settings.Device == ExecutionDevice.Cuda)
                    throw CudaRefused(modelLabel, _cudaFailure, e);
                return new OpenedSession(CreateCpu(model, settings, externalDataFolder, modelLabel), "cpu",
                    $"CUDA is not available ({_cudaFailure}); running on the CPU");
            }
        }
        if (settings.Device == ExecutionDevice.Cuda)
            throw CudaRefused(modelLabel, _cudaFailure ?? "it failed earlier in this process", null);
        string? notice = settings.Device == ExecutionDevice.Auto && _cudaFailure is { } why ? $"CUDA is not available ({why}); running on the CPU" : null;
        return new OpenedSession(CreateCpu(model, settings, externalDataFolder, modelLabel), "cpu", notice);
    }

    /// <summary>Whether the loaded native runtime was built with the CUDA provider (a CUDA build lists it even without a GPU).</summary>
    public static bool RuntimeHasCuda()
    {
        try
        {
            return OrtEnv.Instance().GetAvailableProviders().Contains("CUDAExecutionProvider");
        }
        catch (Exception e) when (IsProbeFailure(e))
        {
            return false;
        }
    }

    // Everything the CUDA attempt can throw short of a bug of ours: ORT's own errors, a provider library that is absent or
    // lacks an entry point, and the CPU-only build's answer above.
    private static bool IsProbeFailure(Exception e) =>
        e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException or BadImageFormatException or CudaUnavailableException;

    private static OnnxQuantException CudaRefused(string label, string why, Exception? inner) => new(label,
        $"--device cuda was asked for, but the CUDA execution provider could not start ({why}). " +
        "It needs an NVIDIA GPU with CUDA 13 and cuDNN 9 libraries on the library path, and an ONNX Runtime built with CUDA: the installed " +
        $"dotnet tool bundles the CPU-only one, so set {OrtLibrary.Variable} to a CUDA-enabled libonnxruntime (README, \"Install\"). Or use --device cpu or auto",
        ExitCode.Unsupported, inner);

    private sealed class CudaUnavailableException(string message) : Exception(message);

    private static InferenceSession CreateCpu(byte[] model, SessionSettings settings, string? folder, string label)
    {
        try
        {
            return Create(model, settings, folder, useCuda: false);
        }
        catch (OnnxRuntimeException e)
        {
            throw new OnnxQuantException(label, $"ONNX Runtime cannot load the model: {FirstLine(e.Message)}", ExitCode.Unsupported, e);
        }
    }

    private static InferenceSession Create(byte[] model, SessionSettings settings, string? folder, bool useCuda)
    {
        using var options = new SessionOptions
        {
            GraphOptimizationLevel = settings.Optimization,
            // A failed run is logged by ORT before it throws; the exception is translated (OrtFailures), so the log stays quiet.
            LogSeverityLevel = settings.Verbose ? OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING : OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL,
        };
        if (settings.Threads > 0)
        {
            options.IntraOpNumThreads = settings.Threads;
            options.InterOpNumThreads = 1;
        }
        if (folder is not null)
            options.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", folder);
        if (!useCuda)
            return new InferenceSession(model, options);
        lock (EnvLock)
        {
            // A failed provider load is reported by ORT's environment logger before the exception; silence it for the try.
            var env = OrtEnv.Instance();
            var previous = env.EnvLogLevel;
            env.EnvLogLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL;
            options.LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL;
            try
            {
                options.AppendExecutionProvider_CUDA(0);
                // scripts/gpu-check.sh sets this so a node the CUDA EP does not take fails the session instead of running on the CPU (docs/gpu-check.md).
                if (Environment.GetEnvironmentVariable(NoCpuFallbackVariable) == "1")
                    options.AddSessionConfigEntry("session.disable_cpu_ep_fallback", "1");
                return new InferenceSession(model, options);
            }
            finally
            {
                env.EnvLogLevel = previous;
            }
        }
    }

    private static string FirstLine(string message)
    {
        var line = message.Split('\n', 2)[0].Trim();
        return line.Length > 200 ? line[..200] + "…" : line;
    }
}
