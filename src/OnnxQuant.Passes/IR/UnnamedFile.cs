using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace OnnxQuant.IR;

/// <summary>
/// Linux calls for a file that has no name until it is finished: <c>open(O_TMPFILE)</c> creates it nameless in a folder
/// (a killed process leaves nothing behind), <c>linkat</c> gives it a name once it is complete, and
/// <c>sync_file_range</c> starts writing its pages to the disk early, so the <c>fsync</c> at the end of a save waits for
/// little, and a second <c>O_DIRECT</c> handle writes around the page cache (<see cref="DirectWriter"/>). Elsewhere, or where the file system refuses (no O_TMPFILE, no /proc), each call says so and callers take
/// their portable path.
/// </summary>
internal static class UnnamedFile
{
    private const int WriteOnly = 1, ReadWrite = 2, CloseOnExec = 0x80000, AtCurrentFolder = -100, AtFollowLinks = 0x400, StartWrite = 2;

    /// <summary>A nameless read-write file in <paramref name="folder"/>, or null where this system cannot create one.</summary>
    public static SafeFileHandle? TryCreate(string folder)
    {
        // O_TMPFILE is __O_TMPFILE | O_DIRECTORY, and O_DIRECTORY differs between the two architectures .NET runs Linux on.
        int? tmpFile = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 0x410000,
            Architecture.Arm64 => 0x404000,
            _ => null,
        };
        if (!OperatingSystem.IsLinux() || tmpFile is null)
            return null;
        try
        {
            int fd = Open(folder, tmpFile.Value | ReadWrite | CloseOnExec, 0x1A4 /* 0644 */);
            return fd < 0 ? null : new SafeFileHandle(fd, ownsHandle: true);
        }
        catch (EntryPointNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Gives a file from <see cref="TryCreate"/> the name <paramref name="path"/> (which must not exist); false if that failed.</summary>
    public static bool TryLink(SafeFileHandle file, string path)
    {
        bool added = false;
        try
        {
            file.DangerousAddRef(ref added);
            return LinkAt(AtCurrentFolder, $"/proc/self/fd/{(int)file.DangerousGetHandle()}", AtCurrentFolder, path, AtFollowLinks) == 0;
        }
        catch (EntryPointNotFoundException)
        {
            return false;
        }
        finally
        {
            if (added) file.DangerousRelease();
        }
    }

    /// <summary>
    /// A second, write-only handle on <paramref name="file"/> that bypasses the page cache (<c>O_DIRECT</c>): writes go
    /// from this process's buffer to the disk without the kernel copying them into fresh cache pages first. Buffers,
    /// offsets and lengths must be multiples of 4096. Null where the file system has no direct I/O (tmpfs) or this is
    /// not Linux.
    /// </summary>
    public static SafeFileHandle? TryOpenDirect(SafeFileHandle file)
    {
        int? direct = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 0x4000,
            Architecture.Arm64 => 0x10000,
            _ => null,
        };
        if (!OperatingSystem.IsLinux() || direct is null)
            return null;
        bool added = false;
        try
        {
            file.DangerousAddRef(ref added);
            int fd = Open($"/proc/self/fd/{(int)file.DangerousGetHandle()}", direct.Value | WriteOnly | CloseOnExec, 0);
            return fd < 0 ? null : new SafeFileHandle(fd, ownsHandle: true);
        }
        catch (EntryPointNotFoundException)
        {
            return null;
        }
        finally
        {
            if (added) file.DangerousRelease();
        }
    }

    /// <summary>Asks the kernel to start writing a range's dirty pages to the disk without waiting for them (a hint: failures are ignored).</summary>
    public static void StartWriteback(SafeFileHandle file, long offset, long length)
    {
        if (!OperatingSystem.IsLinux() || length <= 0 || _noWriteback)
            return;
        bool added = false;
        try
        {
            file.DangerousAddRef(ref added);
            SyncFileRange((int)file.DangerousGetHandle(), offset, length, StartWrite);
        }
        catch (EntryPointNotFoundException)
        {
            _noWriteback = true;
        }
        finally
        {
            if (added) file.DangerousRelease();
        }
    }

    private static volatile bool _noWriteback;

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, int mode);

    [DllImport("libc", EntryPoint = "linkat", SetLastError = true)]
    private static extern int LinkAt(int oldFolder, [MarshalAs(UnmanagedType.LPUTF8Str)] string oldPath, int newFolder,
        [MarshalAs(UnmanagedType.LPUTF8Str)] string newPath, int flags);

    [DllImport("libc", EntryPoint = "sync_file_range", SetLastError = true)]
    private static extern int SyncFileRange(int fd, long offset, long length, uint flags);
}
