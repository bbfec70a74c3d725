namespace OnnxQuant.Calibrate.Sessions;

/// <summary>The memory ONNX Runtime sessions may still take, as the kernel sees it.</summary>
public static class AvailableMemory
{
    /// <summary>MemAvailable from /proc/meminfo (the kernel's estimate of what can be allocated without swapping); null where there is none.</summary>
    public static long? Bytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }
}
