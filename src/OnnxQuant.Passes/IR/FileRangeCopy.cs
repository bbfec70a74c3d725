using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace OnnxQuant.IR;

/// <summary>
/// Copies a byte range from one open file to another inside the kernel (Linux <c>copy_file_range</c>, what <c>cp</c>
/// uses): no page of either file is mapped into or copied through this process. Saving a multi-GB model is mostly such
/// ranges — the weights no pass changed, still in the input's data file, and the rewritten ones in the spill file.
/// </summary>
internal static class FileRangeCopy
{
    private const int Chunk = 1 << 30;
    private static volatile bool _unavailable = !OperatingSystem.IsLinux();

    /// <summary>False where the kernel copy does not exist (not Linux) or was refused once; callers then skip it.</summary>
    public static bool Available => !_unavailable;

    /// <summary>
    /// Copies up to <paramref name="length"/> bytes from <paramref name="source"/> at <paramref name="sourceOffset"/> to
    /// <paramref name="destination"/> at <paramref name="destinationOffset"/>; returns how many were copied. Fewer than
    /// asked (0 where the kernel or file system cannot) leaves the rest to the caller's own read and write.
    /// </summary>
    public static long Copy(SafeFileHandle source, long sourceOffset, SafeFileHandle destination, long destinationOffset, long length)
    {
        if (_unavailable || length <= 0)
            return 0;
        bool sourceRef = false, destinationRef = false;
        try
        {
            source.DangerousAddRef(ref sourceRef);
            destination.DangerousAddRef(ref destinationRef);
            int input = (int)source.DangerousGetHandle(), output = (int)destination.DangerousGetHandle();
            long done = 0;
            while (done < length)
            {
                long inOffset = sourceOffset + done, outOffset = destinationOffset + done;
                nint n = CopyFileRange(input, ref inOffset, output, ref outOffset, (nuint)Math.Min(Chunk, length - done), 0);
                if (n <= 0)
                {
                    // ENOSYS (old kernel) or a seccomp refusal: stop trying for the rest of the process.
                    if (n < 0 && Marshal.GetLastPInvokeError() is 38 or 1)
                        _unavailable = true;
                    break; // 0: end of the source; other errors (EXDEV, EINVAL...): this pair of files cannot
                }
                done += n;
            }
            return done;
        }
        catch (EntryPointNotFoundException)
        {
            _unavailable = true;
            return 0;
        }
        finally
        {
            if (sourceRef) source.DangerousRelease();
            if (destinationRef) destination.DangerousRelease();
        }
    }

    [DllImport("libc", EntryPoint = "copy_file_range", SetLastError = true)]
    private static extern nint CopyFileRange(int input, ref long inputOffset, int output, ref long outputOffset, nuint length, uint flags);
}
